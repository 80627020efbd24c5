//! The demo's steps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ota_core::image::verify::PublicKey;
use ota_core::image::Version;
use ota_core::protocol::AppVersion;
use ota_host::app::record::AppRecord;
use ota_host::board::{BoardProcess, BoardSpec};

use super::bins::{self, DEVAPP};
use super::publisher::{self, Serving};
use super::{DemoConfig, Note};
use otactl::assemble::{FlashmapOptions, Payload, SignOptions, Signer};
use otactl::fsutil::{write_atomic, Mode, Overwrite};
use otactl::publish::{ClientOptions, Event};
use otactl::sign::SigningKey;

/// The board string of the example's kit.
const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Bound for each observed step.
const STEP: Duration = Duration::from_secs(90);

/// The flash map the demo's board uses unless told otherwise (swap using scratch, 16 MiB slots:
/// room for the device application of a debug build), and its platform file (64 KiB sectors).
const FLASHMAP: [(&str, &str); 2] = [
    (
        "board-host_swap.json",
        include_str!("../../../flashmap/board-host_swap.json"),
    ),
    (
        "board-host_platform.json",
        include_str!("../../../flashmap/board-host_platform.json"),
    ),
];

/// The three builds of the story, as the example's Makefile would make them.
const BUILDS: [AppRecord; 3] = [
    AppRecord {
        version: AppVersion::new(1, 0, 0),
        blinky_ms: 1000,
        test_revert: false,
    },
    AppRecord {
        version: AppVersion::new(1, 1, 0),
        blinky_ms: 250,
        test_revert: false,
    },
    AppRecord {
        version: AppVersion::new(1, 2, 0),
        blinky_ms: 1000,
        test_revert: true,
    },
];

type Notes = Arc<dyn Fn(Note) + Send + Sync>;

struct Setup {
    dir: PathBuf,
    flashmap: PathBuf,
    pubkey: PublicKey,
    pubkey_pem: PathBuf,
    simboard: PathBuf,
    images: [PathBuf; 3],
}

/// Runs the demo (see the module docs); `notes` receives the narration. Returns how long the
/// story took, from the board's start to the last step.
///
/// # Errors
/// Any step not observed within its timeout, missing executables, or a failed signing or start.
pub fn run(cfg: &DemoConfig, notes: impl Fn(Note) + Send + Sync + 'static) -> Result<Duration> {
    let notes: Notes = Arc::new(notes);
    let tmp;
    let dir = if let Some(d) = &cfg.dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        d.clone()
    } else {
        tmp = tempfile::tempdir().context("creating a temporary directory")?;
        tmp.path().to_path_buf()
    };
    let setup = prepare(cfg, &dir, &notes)?;
    let port = match cfg.port {
        Some(p) => p,
        None => free_port()?,
    };
    otactl::publish::embedded::start(SocketAddr::from(([127, 0, 0, 1], port)))?;
    notes(Note::Setup(format!(
        "embedded MQTT broker on 127.0.0.1:{port}"
    )));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    story(cfg, &setup, port, rt.handle(), &notes)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn prepare(cfg: &DemoConfig, dir: &Path, notes: &Notes) -> Result<Setup> {
    let flashmap = if let Some(f) = &cfg.flashmap {
        f.clone()
    } else {
        for (name, text) in FLASHMAP {
            write_atomic(
                &dir.join(name),
                text.as_bytes(),
                Mode::Public,
                Overwrite::Allow,
            )?;
        }
        dir.join(FLASHMAP[0].0)
    };
    let fm = FlashmapOptions::read(&flashmap, None, None)?;
    let exes = bins::locate(&|s| notes(Note::Setup(s)))?;
    notes(Note::Setup(format!(
        "board {}, device application {}",
        exes.simboard.display(),
        exes.devapp.display()
    )));
    let app = std::fs::read(&exes.devapp)
        .with_context(|| format!("reading {}", exes.devapp.display()))?;
    let key = otactl::sign::generate(ota_core::image::KeyType::EcdsaP256);
    let pubkey = key.public_key();
    let key_path = dir.join("signing-key.pem");
    let pubkey_pem = dir.join("signing-key.pub.pem");
    write_atomic(
        &key_path,
        otactl::sign::private_key_pem(&key)?.as_bytes(),
        Mode::Private,
        Overwrite::Allow,
    )?;
    write_atomic(
        &pubkey_pem,
        otactl::sign::public_key_pem(&pubkey).as_bytes(),
        Mode::Public,
        Overwrite::Allow,
    )?;
    notes(Note::Setup(format!("signing key {}", key_path.display())));
    let mut images: [PathBuf; 3] = Default::default();
    for (image, build) in images.iter_mut().zip(&BUILDS) {
        let exe = build.stamp(app.clone()).with_context(|| {
            format!("{} carries a malformed build record", exes.devapp.display())
        })?;
        *image = sign(exe, build.version, &fm, &key, dir)?;
        notes(Note::Setup(format!(
            "{} {}: {DEVAPP} + build record (BLINKY_DELAY_MS={}{}), signed: {}",
            if build.test_revert {
                "bad image"
            } else {
                "image"
            },
            build.version,
            build.blinky_ms,
            if build.test_revert {
                ", TEST_REVERT"
            } else {
                ""
            },
            image.display()
        )));
    }
    Ok(Setup {
        dir: dir.to_path_buf(),
        flashmap,
        pubkey,
        pubkey_pem,
        simboard: exes.simboard,
        images,
    })
}

fn sign(
    exe: Vec<u8>,
    version: AppVersion,
    fm: &FlashmapOptions,
    key: &SigningKey,
    dir: &Path,
) -> Result<PathBuf> {
    let image_version = Version::parse(&version.to_string())
        .map_err(|e| anyhow::anyhow!("version {version}: {e:?}"))?;
    let mut opts = SignOptions::new(image_version, fm.header_size, fm.slot_size);
    opts.pad_header = fm.pad_header;
    opts.align = fm.align;
    opts.max_sectors = fm.max_sectors;
    opts.erased_val = fm.erased_val;
    opts.load_addr = fm.load_addr;
    opts.overwrite_only = fm.overwrite_only;
    opts.header_pad_erased = fm.recipe.header_pad_erased();
    let payload = Payload {
        data: exe,
        base_addr: None,
    };
    let signed = otactl::assemble::build(&opts, payload, &Signer::Key(key))
        .with_context(|| format!("signing the device application {version}"))?;
    let out = dir.join(format!("app-{version}-signed.bin"));
    write_atomic(&out, &signed.to_bin(), Mode::Public, Overwrite::Allow)?;
    Ok(out)
}

/// The running pieces the steps look at.
struct Stage<'a> {
    setup: &'a Setup,
    port: u16,
    rt: &'a tokio::runtime::Handle,
    notes: &'a Notes,
    board: BoardProcess,
    events: mpsc::Receiver<Event>,
    events_tx: mpsc::Sender<Event>,
}

impl Stage<'_> {
    /// Starts the publisher for `BUILDS[version]` and waits until it listens for requests
    /// (events of the previous run still arriving are narrated).
    fn publish(&mut self, version: usize) -> Result<Serving> {
        let image = &self.setup.images[version];
        (self.notes)(Note::Publisher(format!("serving {}", image.display())));
        let serving = publisher::serve(
            self.rt,
            ClientOptions::plain(
                &format!("otactl-demo-{}", BUILDS[version].version),
                "127.0.0.1",
                self.port,
                false,
            ),
            BOARD,
            image,
            self.setup.pubkey,
            self.setup.dir.join("publisher-state.db"),
            self.events_tx.clone(),
        )?;
        self.next_event(|e| matches!(e, Event::Connected { .. }))
            .context("waiting for the publisher to connect to the broker")?;
        Ok(serving)
    }

    fn board(&mut self, needle: &str) -> Result<()> {
        self.board
            .wait_for(needle, STEP)
            .with_context(|| format!("waiting for the board to print {needle:?}"))?;
        (self.notes)(Note::Observed(format!("board: {needle}")));
        Ok(())
    }

    /// Waits for a publisher event whose JSON contains every `needle`.
    fn publisher(&mut self, needles: &[&str]) -> Result<()> {
        self.next_event(|e| {
            let json = e.to_json();
            needles.iter().all(|n| json.contains(n))
        })
        .with_context(|| format!("waiting for the publisher to report {needles:?}"))?;
        (self.notes)(Note::Observed(format!("publisher: {}", needles.join(" "))));
        Ok(())
    }

    /// Narrates publisher events until one satisfies `pred` (at most [`STEP`]).
    fn next_event(&mut self, pred: impl Fn(&Event) -> bool) -> Result<()> {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.events.recv_timeout(left)?;
            if let Some(line) = publisher::describe(&e) {
                (self.notes)(Note::Publisher(line));
            }
            if pred(&e) {
                return Ok(());
            }
        }
    }
}

fn story(
    cfg: &DemoConfig,
    setup: &Setup,
    port: u16,
    rt: &tokio::runtime::Handle,
    notes: &Notes,
) -> Result<Duration> {
    let spec = BoardSpec {
        simboard: setup.simboard.clone(),
        flash: setup.dir.join("flash"),
        flashmap: setup.flashmap.clone(),
        pubkey: setup.pubkey_pem.clone(),
        workdir: setup.dir.join("run"),
        broker: format!("mqtt://127.0.0.1:{port}"),
        tls: None,
        tls_server_name: None,
        check_secs: cfg.check_secs,
        watchdog_ms: cfg.watchdog_ms,
        boot_erase_delay_us: 0,
        // The board's own serial (what `otactl cert-to-c --header` gives a real board): with the
        // template serial the publisher could not tell it from other boards and would not block
        // the bad version for it.
        serial: Some("DEMO-BOARD-0001".into()),
        flow: None,
    };
    if spec.flash.exists() {
        std::fs::remove_dir_all(&spec.flash)?;
    }
    let started = Instant::now();
    let mut board = BoardProcess::start(&spec, Some(&setup.images[0]))
        .with_context(|| format!("starting {}", spec.simboard.display()))?;
    let n = Arc::clone(notes);
    board.echo(move |l| n(Note::Board(l.to_string())));
    let (events_tx, events) = mpsc::channel();
    let mut s = Stage {
        setup,
        port,
        rt,
        notes,
        board,
        events,
        events_tx,
    };
    notes(Note::Step(
        "1/4 the board runs 1.0.0; the publisher has 1.0.0 too: no update".into(),
    ));
    s.board("app: version 1.0.0 started")?;
    s.board("led: blink period 1000 ms")?;
    let p = s.publish(0)?;
    s.publisher(&["no_update", "not_newer"])?;
    s.board("no update: invalid_version")?;
    p.stop();

    notes(Note::Step(
        "2/4 publish 1.1.0 (LED four times faster): download, swap, confirm".into(),
    ));
    let p = s.publish(1)?;
    s.publisher(&["offered", "1.1.0"])?;
    s.board("download 100%")?;
    s.board("swap type test")?;
    s.board("app: version 1.1.0 started")?;
    s.board("led: blink period 250 ms")?;
    s.board("image confirmed")?;
    p.stop();

    notes(Note::Step(
        "3/4 publish a bad 1.2.0: it hangs, the watchdog and MCUboot bring 1.1.0 back".into(),
    ));
    let p = s.publish(2)?;
    s.board("app: version 1.2.0 started")?;
    s.board("watchdog: not fed")?;
    s.board("swap type revert")?;
    s.board("app: version 1.1.0 started")?;

    notes(Note::Step(
        "4/4 the publisher blocks 1.2.0 for this device: it is not offered again".into(),
    ));
    s.publisher(&["reverted", "1.2.0"])?;
    s.publisher(&["no_update", "blocked"])?;
    s.board("no update: invalid_version")?;
    p.stop();
    if s.board
        .transcript
        .iter()
        .rev()
        .take_while(|l| !l.contains("version 1.1.0 started"))
        .any(|l| l.contains("update accepted"))
    {
        bail!("1.2.0 was downloaded again after the revert");
    }
    s.board.kill();
    Ok(started.elapsed())
}
