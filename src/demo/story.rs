//! The demo's steps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::sign::SigningKey;
use anyhow::{bail, Context, Result};
use firmware::image::verify::PublicKey;
use firmware::image::Version;

use super::board::{Board, BoardSpec};
use super::build::AppSpec;
use super::publisher::{self, Serving};
use super::{DemoConfig, Note};
use crate::fsutil::{write_atomic, Mode, Overwrite};
use crate::image::{FlashmapOptions, Payload, SignOptions, Signer};
use crate::publish::Event;

/// The board string of the example's kit.
const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Bound for each observed step.
const STEP: Duration = Duration::from_secs(90);

type Notes = Arc<dyn Fn(Note) + Send + Sync>;

struct Setup {
    dir: PathBuf,
    flashmap: PathBuf,
    pubkey: PublicKey,
    pubkey_pem: PathBuf,
    simboard: PathBuf,
    images: [PathBuf; 3],
}

/// Runs the demo (see the module docs); `notes` receives the narration.
///
/// # Errors
/// Any step not observed within its timeout, or a failed build, signing or start.
pub fn run(cfg: &DemoConfig, notes: impl Fn(Note) + Send + Sync + 'static) -> Result<()> {
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
    crate::publish::embedded::start(SocketAddr::from(([127, 0, 0, 1], port)))?;
    notes(Note::Setup(format!(
        "embedded MQTT broker on 127.0.0.1:{port}"
    )));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    story(&setup, port, rt.handle(), &notes)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn prepare(cfg: &DemoConfig, dir: &Path, notes: &Notes) -> Result<Setup> {
    let flashmap = cfg.flashmap.clone().unwrap_or_else(|| {
        cfg.builder
            .source_dir
            .join("flashmap")
            .join("board-host_swap.json")
    });
    // Read the map first: a wrong path fails now, not after minutes of building.
    let fm = FlashmapOptions::read(&flashmap, None, None)?;
    let key = crate::sign::generate(firmware::image::KeyType::EcdsaP256);
    let pubkey = key.public_key();
    let key_path = dir.join("signing-key.pem");
    let pubkey_pem = dir.join("signing-key.pub.pem");
    write_atomic(
        &key_path,
        crate::sign::private_key_pem(&key)?.as_bytes(),
        Mode::Private,
        Overwrite::Allow,
    )?;
    write_atomic(
        &pubkey_pem,
        crate::sign::public_key_pem(&pubkey).as_bytes(),
        Mode::Public,
        Overwrite::Allow,
    )?;
    notes(Note::Setup(format!("signing key {}", key_path.display())));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let specs = [
        AppSpec::good("1.0.0", 1000),
        AppSpec::good("1.1.0", 250),
        AppSpec::bad("1.2.0", 1000),
    ];
    let mut simboard = PathBuf::new();
    let mut images: [PathBuf; 3] = Default::default();
    for (i, spec) in specs.iter().enumerate() {
        let what = if spec.test_revert {
            "bad TEST_REVERT image"
        } else {
            "image"
        };
        notes(Note::Setup(format!(
            "building the device application {} ({what}, BLINKY_DELAY_MS={}) with cargo --release",
            spec.version, spec.blinky_ms
        )));
        let exes = cfg.builder.build(spec, &["devapp", "simboard"])?;
        let exe = bin.join(format!("devapp-{}", spec.version));
        std::fs::copy(&exes[0], &exe)?;
        if i == 0 {
            simboard = bin.join("simboard");
            std::fs::copy(&exes[1], &simboard)?;
        }
        images[i] = sign(&exe, &spec.version, &fm, &key, dir)?;
        notes(Note::Setup(format!("signed {}", images[i].display())));
    }
    Ok(Setup {
        dir: dir.to_path_buf(),
        flashmap,
        pubkey,
        pubkey_pem,
        simboard,
        images,
    })
}

fn sign(
    exe: &Path,
    version: &str,
    fm: &FlashmapOptions,
    key: &SigningKey,
    dir: &Path,
) -> Result<PathBuf> {
    let mut opts = SignOptions::new(
        Version::parse(version).map_err(|e| anyhow::anyhow!("version {version}: {e:?}"))?,
        fm.header_size,
        fm.slot_size,
    );
    opts.pad_header = fm.pad_header;
    opts.align = fm.align;
    opts.max_sectors = fm.max_sectors;
    opts.erased_val = fm.erased_val;
    opts.load_addr = fm.load_addr;
    opts.overwrite_only = fm.overwrite_only;
    opts.header_pad_erased = fm.recipe.header_pad_erased();
    let payload = Payload::read(exe)?;
    let signed = crate::image::build(&opts, payload, &Signer::Key(key))
        .with_context(|| format!("signing {}", exe.display()))?;
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
    board: Board,
    events: mpsc::Receiver<Event>,
    events_tx: mpsc::Sender<Event>,
}

impl Stage<'_> {
    fn publish(&self, version: usize) -> Result<Serving> {
        let image = &self.setup.images[version];
        (self.notes)(Note::Publisher(format!("serving {}", image.display())));
        publisher::serve(
            self.rt,
            self.port,
            BOARD,
            image,
            self.setup.pubkey,
            self.setup.dir.join("publisher-state.db"),
            self.events_tx.clone(),
        )
    }

    fn board(&mut self, needle: &str) -> Result<()> {
        self.board.wait_for(needle, STEP)?;
        (self.notes)(Note::Observed(format!("board: {needle}")));
        Ok(())
    }

    /// Waits for a publisher event whose JSON contains every `needle`.
    fn publisher(&mut self, needles: &[&str]) -> Result<()> {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self
                .events
                .recv_timeout(left)
                .with_context(|| format!("waiting for the publisher to report {needles:?}"))?;
            if let Some(line) = publisher::describe(&e) {
                (self.notes)(Note::Publisher(line));
            }
            let json = e.to_json();
            if needles.iter().all(|n| json.contains(n)) {
                (self.notes)(Note::Observed(format!("publisher: {}", needles.join(" "))));
                return Ok(());
            }
        }
    }
}

fn story(setup: &Setup, port: u16, rt: &tokio::runtime::Handle, notes: &Notes) -> Result<()> {
    let spec = BoardSpec {
        simboard: setup.simboard.clone(),
        flash: setup.dir.join("flash"),
        flashmap: setup.flashmap.clone(),
        pubkey: setup.pubkey_pem.clone(),
        workdir: setup.dir.join("run"),
        broker: format!("mqtt://127.0.0.1:{port}"),
        tls: None,
        tls_server_name: None,
        check_secs: 2.0,
        watchdog_ms: 3000,
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
    let mut board = spec.start(Some(&setup.images[0]))?;
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
    Ok(())
}
