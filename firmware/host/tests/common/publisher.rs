//! A reference publisher for agent tests: answers the agent's requests from an image in
//! memory, through the real protocol encoders/decoders.

use std::collections::VecDeque;

use ota_core::agent::{Agent, AgentConfig, Inbound, Outbound, Phase};
use ota_core::flashmap::FlashMap;
use ota_core::image::verify::PublicKey;
use ota_core::protocol::chunk::ChunkHeader;
use ota_core::protocol::codec::JobWriter;
use ota_core::protocol::{decode_request, AppVersion, ChunkSize, MessageKind};
use ota_host::sim::SimFlash;

/// Board string used by the tests.
pub const BOARD: &str = "APP_SIMBOARD";

/// Serves one image.
pub struct Publisher {
    pub image: Vec<u8>,
    pub version: AppVersion,
    pub board: String,
    pub chunk: u32,
    /// A `Broker` field for the job (a redirect), if any.
    pub broker: Option<String>,
}

impl Publisher {
    pub fn new(image: Vec<u8>, version: AppVersion) -> Self {
        Self {
            image,
            version,
            board: BOARD.to_string(),
            chunk: 256,
            broker: None,
        }
    }

    pub fn job(&self) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut w = JobWriter::new(&mut buf);
        let v = self.version.to_string();
        w.field("Message", "Update Available").unwrap();
        w.field("Board", &self.board).unwrap();
        w.field("Version", &v).unwrap();
        w.field("Connection", "MQTT").unwrap();
        if let Some(b) = &self.broker {
            w.field("Broker", b).unwrap();
        }
        let n = w.finish().unwrap();
        buf[..n].to_vec()
    }

    pub fn chunk_at(&self, offset: u32, size: u32) -> Vec<u8> {
        let total = self.image.len() as u32;
        let end = offset.saturating_add(size).min(total);
        let data = &self.image[offset as usize..end as usize];
        let h = ChunkHeader::for_chunk(self.version, total, offset, data.len() as u16, self.chunk)
            .unwrap();
        let mut p = h.to_bytes().to_vec();
        p.extend_from_slice(data);
        p
    }

    /// Replies to one device request.
    pub fn reply(&self, payload: &[u8]) -> Vec<Vec<u8>> {
        let req = decode_request(payload).expect("agent requests decode");
        let total = self.image.len() as u32;
        match req.kind {
            MessageKind::UpdateAvailability => vec![self.job()],
            MessageKind::RequestUpdate => (0..total)
                .step_by(self.chunk as usize)
                .map(|o| self.chunk_at(o, self.chunk))
                .collect(),
            MessageKind::RequestDataChunk => {
                let off = req.offset.unwrap_or(0) as u32;
                if off >= total {
                    return vec![];
                }
                let size = match req.size {
                    Some(ChunkSize::Bytes(n)) => n as u32,
                    _ => total - off,
                };
                vec![self.chunk_at(off, size)]
            }
            _ => vec![],
        }
    }
}

/// An agent config for tests: small chunks, short timers.
pub fn agent_config<'a>(
    map: FlashMap,
    keys: &'a [PublicKey],
    running: AppVersion,
) -> AgentConfig<'a> {
    let mut c = AgentConfig::new(map, keys, BOARD, running);
    c.chunk_size = 256;
    c.check_interval_ms = 1000;
    c.job_timeout_ms = 5000;
    c.chunk_timeout_ms = 3000;
    c
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Reboot,
    Stalled,
}

/// What the agent published, copied out of its buffer.
pub fn outbound(o: Option<Outbound<'_>>) -> Option<Result<Vec<u8>, ()>> {
    match o? {
        Outbound::Publish { payload, .. } => Some(Ok(payload.to_vec())),
        Outbound::Reboot => Some(Err(())),
        Outbound::Redirect { host, port } => panic!("unexpected redirect to {host}:{port}"),
    }
}

/// Runs sessions (with a clean network) until the agent asks for a reboot or `steps` timer
/// ticks pass. Flash errors (power loss) come back as `Err`.
pub fn run(
    agent: &mut Agent<'_>,
    flash: &mut SimFlash,
    publ: &Publisher,
    now: &mut u64,
    steps: u32,
) -> Result<End, String> {
    run_limited(agent, flash, publ, now, steps, usize::MAX)
}

/// [`run`], but stops (as `Stalled`) after delivering `max_msgs` messages to the agent.
pub fn run_limited(
    agent: &mut Agent<'_>,
    flash: &mut SimFlash,
    publ: &Publisher,
    now: &mut u64,
    steps: u32,
    mut max_msgs: usize,
) -> Result<End, String> {
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    for _ in 0..steps {
        if agent.status().phase == Phase::ReadyToReboot {
            return Ok(End::Reboot);
        }
        *now += 1000;
        let out = outbound(agent.poll(*now, flash).map_err(|e| e.to_string())?);
        match out {
            Some(Ok(p)) => queue.extend(publ.reply(&p)),
            Some(Err(())) => return Ok(End::Reboot),
            None => {}
        }
        while let Some(msg) = queue.pop_front() {
            if max_msgs == 0 {
                return Ok(End::Stalled);
            }
            max_msgs -= 1;
            let topic = agent.unique_topic().to_string();
            let inbound = Inbound::Publish {
                topic: &topic,
                payload: &msg,
            };
            match outbound(
                agent
                    .handle(*now, inbound, flash)
                    .map_err(|e| e.to_string())?,
            ) {
                Some(Ok(p)) => queue.extend(publ.reply(&p)),
                Some(Err(())) => return Ok(End::Reboot),
                None => {}
            }
        }
    }
    Ok(End::Stalled)
}
