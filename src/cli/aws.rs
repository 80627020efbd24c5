//! `otactl aws policy`: least-privilege AWS IoT Core policy documents.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use otactl::aws::{self, PolicySpec, Role};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    #[command(about = "Print a least-privilege AWS IoT policy for the devices or the publisher")]
    Policy(PolicyCmd),
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self {
            Self::Policy(c) => c.run(ctx),
        }
    }
}

/// Whose policy to print.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Boards running Infineon's OTA agent.
    Device,
    /// `otactl publish`.
    Publisher,
}

/// Print a least-privilege AWS IoT policy document (JSON) for the devices or the publisher.
///
/// Instead of the example's allow-everything policy, it allows exactly what the OTA agent and
/// `otactl publish` do on the wire. Devices: connect with a client ID that is their identifier
/// (`pIdentifier`, first 18 bytes) plus a 1-5 digit number; publish to PFX/BRD/publish_notify
/// and their will topic cy_ota_device/will; subscribe to and receive PFX/BRD/OTAImage and
/// PFX/BRD/OTAImage/<0-65535> (subscribing to the wildcard filters .../OTAImage/+ and /# is
/// denied). The publisher: connect with client IDs starting with --publisher-client-id,
/// subscribe to and receive the request topics, publish to the OTAImage topics.
///
/// Without --region and --account the ARNs hold the placeholders REGION and ACCOUNT: replace
/// them (or pass the flags) before `aws iot create-policy`.
///
/// Client-ID and thing-name policy variables: the agent makes a new client ID for every
/// connection and no topic holds a device name, so ${iot:ClientId} scopes nothing.
/// --thing-name-policy-variables instead lets a device connect only with a client ID that starts
/// with the name of the thing its certificate is attached to (iot:Connection.Thing.IsAttached):
/// set each board's pIdentifier to its thing name (at most 18 bytes) and attach the certificate
/// with exclusive thing association, since the client ID never equals the thing name.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl aws policy device --topic-prefix MyUniqueTopic --board APP_CY8CPROTO_062S2_43439 \\\n    --region eu-central-1 --account 123456789012 > device-policy.json\n  otactl aws policy publisher --board APP_CY8CPROTO_062S2_43439 --region eu-central-1 \\\n    --account 123456789012 > publisher-policy.json\n  aws iot create-policy --policy-name ota-device --policy-document file://device-policy.json"
)]
pub struct PolicyCmd {
    /// Whose policy: device or publisher.
    #[arg(value_enum, value_name = "ROLE")]
    role: RoleArg,
    /// Company topic prefix (COMPANY_TOPIC_PREPEND of the devices).
    #[arg(long, alias = "prefix", value_name = "PFX", default_value = ota_core::protocol::topics::PREFIX_APP)]
    topic_prefix: String,
    /// Board string (CY_TARGET_BOARD_STRING); repeat for several boards.
    #[arg(long, value_name = "BRD", required = true)]
    board: Vec<String>,
    /// AWS region of the ARNs (default: the placeholder REGION).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// AWS account ID of the ARNs (default: the placeholder ACCOUNT).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// The devices' MQTT identifier (pIdentifier; empty means the agent's cy_device).
    #[arg(long, value_name = "ID", default_value = aws::EXAMPLE_DEVICE_IDENTIFIER)]
    device_identifier: String,
    /// Scope device connections to the thing their certificate is attached to (see above).
    #[arg(long)]
    thing_name_policy_variables: bool,
    /// Start of the publisher's client IDs (otactl publish --client-id).
    #[arg(long, value_name = "PREFIX", default_value = aws::PUBLISHER_CLIENT_ID_PREFIX)]
    publisher_client_id: String,
    /// The publisher's MQTT 5 shared-subscription group (otactl publish --share-group).
    #[arg(long, value_name = "NAME")]
    share_group: Option<String>,
}

impl PolicyCmd {
    fn run(self, _ctx: &Ctx) -> Result<()> {
        let mut spec = PolicySpec::new(&self.topic_prefix, self.board);
        if let Some(r) = self.region {
            spec.region = r;
        }
        if let Some(a) = self.account {
            spec.account = a;
        }
        spec.device_identifier = self.device_identifier;
        spec.thing_name = self.thing_name_policy_variables;
        spec.publisher_client_id = self.publisher_client_id;
        spec.share_group = self.share_group;
        let role = match self.role {
            RoleArg::Device => Role::Device,
            RoleArg::Publisher => Role::Publisher,
        };
        let doc = aws::policy(role, &spec).context("cannot make the policy")?;
        let text = serde_json::to_string_pretty(&doc).context("cannot encode the policy")?;
        if spec.has_placeholders() {
            log::warn!(
                "the policy's ARNs hold the placeholders {} and {}: replace them, or pass --region and --account",
                aws::PLACEHOLDER_REGION,
                aws::PLACEHOLDER_ACCOUNT
            );
        }
        outln!("{text}");
        Ok(())
    }
}
