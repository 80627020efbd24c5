//! Draws the publisher's events: one indicatif bar per active transfer on a terminal, plain
//! lines otherwise, or one JSON object per line with `--json`.
//!
//! Write errors are ignored: when whatever reads the publisher's output goes away
//! (`otactl publish | tee log` and tee dies), the publisher keeps serving devices.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use otactl::publish::{Event, EventSink, Mode};

/// How events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Bars on stderr, other events as lines above them.
    Bars,
    /// Plain lines on stdout (progress every 25 %).
    Lines,
    /// One JSON object per line on stdout (progress every 10 %).
    Json,
}

struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

/// Last progress step printed per topic (for throttled lines).
type Steps = HashMap<String, u32>;

/// A transfer (re)started or ended on a topic: its progress lines start again from 0 %.
fn reset_steps(steps: &Mutex<Steps>, e: &Event) {
    if let Event::Started { topic, .. } | Event::Sent { topic, .. } = e {
        steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(topic);
    }
}

fn progress_step(steps: &mut Steps, topic: &str, bytes: u32, total: u32, per: u32) -> bool {
    let step = if total == 0 {
        per
    } else {
        (u64::from(bytes) * u64::from(per) / u64::from(total)) as u32
    };
    let last = steps.entry(topic.to_string()).or_insert(0);
    if step > *last {
        *last = step;
        true
    } else {
        false
    }
}

/// A human line for an event (`None` for progress).
fn line(e: &Event) -> Option<String> {
    Some(match e {
        Event::Connected { filters } => format!("listening on {}", filters.join(", ")),
        Event::Disconnected { error, retry_ms } if error.contains("cannot connect") => {
            format!("{error}; retrying in {retry_ms} ms")
        }
        Event::Disconnected { error, retry_ms } => {
            format!("broker connection lost ({error}); retrying in {retry_ms} ms")
        }
        Event::Offered {
            device,
            running,
            version,
        } => format!("{device}: runs {running}, offered {version}"),
        Event::NoUpdate {
            device,
            running,
            reason,
        } => format!("{device}: runs {running}, no update ({reason})"),
        Event::Started {
            device,
            topic,
            mode,
            version,
            total,
        } => {
            let how = match mode {
                Mode::Push => "the whole image",
                Mode::Direct => "a broadcast",
                Mode::Pull => "chunks on request",
            };
            format!("{device}: sending {version} ({total} bytes, {how}) to {topic}")
        }
        Event::Sent {
            device,
            version,
            bytes,
            millis,
            ..
        } => {
            let rate = f64::from(*bytes) / 1024.0 / 1024.0 / (*millis as f64 / 1000.0).max(0.001);
            format!("{device}: sent {version}, {bytes} bytes in {millis} ms ({rate:.1} MiB/s)")
        }
        Event::Result {
            device,
            version,
            result,
        } => format!("{device}: {result} ({version})"),
        Event::Unblocked { device, version } => {
            format!("{device}: {version} unblocked by another process; offered again")
        }
        Event::Blocked { device, version } => {
            format!("{device}: {version} blocked by another publisher; not offered here either")
        }
        Event::Warning { topic, message } if topic.is_empty() => format!("warning: {message}"),
        Event::Warning { topic, message } => format!("warning: {topic}: {message}"),
        Event::Notice { message, .. } => format!("note: {message}"),
        Event::Progress { .. } => return None,
    })
}

/// The sink for `style`.
pub fn sink(style: Style) -> EventSink {
    match style {
        Style::Json => {
            let steps = Mutex::new(Steps::new());
            Arc::new(move |e: Event| {
                reset_steps(&steps, &e);
                if let Event::Progress {
                    topic,
                    bytes,
                    total,
                    ..
                } = &e
                {
                    let mut s = steps
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !progress_step(&mut s, topic, *bytes, *total, 10) {
                        return;
                    }
                }
                let _ = writeln!(std::io::stdout().lock(), "{}", e.to_json());
            })
        }
        Style::Lines => {
            let steps = Mutex::new(Steps::new());
            Arc::new(move |e: Event| {
                reset_steps(&steps, &e);
                if let Event::Progress {
                    device,
                    topic,
                    bytes,
                    total,
                } = &e
                {
                    let mut s = steps
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if progress_step(&mut s, topic, *bytes, *total, 4) {
                        let _ =
                            writeln!(std::io::stdout().lock(), "{device}: {bytes}/{total} bytes");
                    }
                    return;
                }
                if let Some(l) = line(&e) {
                    let _ = if matches!(e, Event::Warning { .. }) {
                        writeln!(std::io::stderr().lock(), "{l}")
                    } else {
                        writeln!(std::io::stdout().lock(), "{l}")
                    };
                }
            })
        }
        Style::Bars => {
            let state = Mutex::new(Bars {
                multi: MultiProgress::new(),
                bars: HashMap::new(),
            });
            Arc::new(move |e: Event| {
                let mut b = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                bar_event(&mut b, &e);
            })
        }
    }
}

fn bar_event(b: &mut Bars, e: &Event) {
    match e {
        Event::Started {
            device,
            topic,
            total,
            ..
        } => {
            let bar = b.multi.add(ProgressBar::new(u64::from(*total)));
            let style = ProgressStyle::with_template(
                "{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(device.clone());
            if let Some(old) = b.bars.insert(topic.clone(), bar) {
                old.finish_and_clear();
            }
        }
        Event::Progress { topic, bytes, .. } => {
            if let Some(bar) = b.bars.get(topic) {
                bar.set_position(u64::from(*bytes));
            }
        }
        Event::Sent { topic, .. } => {
            if let Some(bar) = b.bars.remove(topic) {
                bar.finish_and_clear();
            }
            if let Some(l) = line(e) {
                let _ = b.multi.println(l);
            }
        }
        other => {
            if let Some(l) = line(other) {
                let _ = b.multi.println(l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_per_topic() {
        let mut s = Steps::new();
        let printed: Vec<u32> = (1..=100)
            .map(|i| i * 1000)
            .filter(|b| progress_step(&mut s, "t", *b, 100_000, 4))
            .collect();
        assert_eq!(printed, [25_000, 50_000, 75_000, 100_000]);
        assert!(progress_step(&mut s, "u", 100_000, 100_000, 4));
        // A new transfer on the same topic prints its progress again.
        let steps = Mutex::new(s);
        reset_steps(
            &steps,
            &Event::Started {
                device: "d".into(),
                topic: "t".into(),
                mode: Mode::Push,
                version: "1.1.0".into(),
                total: 100_000,
            },
        );
        assert!(progress_step(
            &mut steps.lock().unwrap(),
            "t",
            30_000,
            100_000,
            4
        ));
    }

    #[test]
    fn lines_name_device_version_and_result() {
        let e = Event::Result {
            device: "B/1".into(),
            version: "1.1.0".into(),
            result: "reverted".into(),
        };
        assert_eq!(line(&e).unwrap(), "B/1: reverted (1.1.0)");
        assert_eq!(
            e.to_json(),
            r#"{"event":"result","device":"B/1","version":"1.1.0","result":"reverted"}"#
        );
        let p = Event::Progress {
            device: "d".into(),
            topic: "t".into(),
            bytes: 1,
            total: 2,
        };
        assert!(line(&p).is_none());
    }
}
