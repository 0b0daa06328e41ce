//! The carriers of a deployment behind the one carrier port: each text goes
//! through its practice's carrier (`OutboundText::carrier`), so the
//! dispatcher knows nothing of which carriers exist.

use async_trait::async_trait;

use crate::aws_sms::AwsSms;
use crate::bandwidth::Bandwidth;
use messaging_core::domain::carrier::CarrierKind;
use messaging_core::domain::message::RecipientError;
use messaging_core::ports::{Carrier, CarrierOutcome, OutboundText};

/// The deployment's carriers; one it is not set up for refuses the text
/// with `carrier_not_configured` (nothing is sent, the office sees why).
#[derive(Debug, Clone, Default)]
pub struct Carriers {
    /// Bandwidth Messaging v2, when configured.
    pub bandwidth: Option<Bandwidth>,
    /// AWS End User Messaging SMS, when configured.
    pub aws: Option<AwsSms>,
}

#[async_trait]
impl Carrier for Carriers {
    async fn send(&self, text: &OutboundText) -> CarrierOutcome {
        match (text.carrier, &self.bandwidth, &self.aws) {
            (CarrierKind::Bandwidth, Some(bandwidth), _) => bandwidth.send(text).await,
            (CarrierKind::Aws, _, Some(aws)) => aws.send_text(text).await,
            (kind, _, _) => {
                tracing::error!(carrier = %kind, "the practice's carrier is not configured for this deployment");
                CarrierOutcome::Rejected {
                    status: 0,
                    detail: format!("{kind} is not configured for this deployment"),
                    error: Some(RecipientError::carrier_not_configured(kind)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_carrier_the_deployment_lacks_refuses_with_an_explanation() {
        let text = OutboundText {
            from: "+14155550100".into(),
            to: "+14155550142".into(),
            text: "hi".into(),
            tag: "p/m/00001".into(),
            carrier: CarrierKind::Aws,
        };
        match Carriers::default().send(&text).await {
            CarrierOutcome::Rejected { error: Some(e), .. } => {
                assert_eq!(
                    (e.code.as_str(), e.carrier.as_str()),
                    ("carrier_not_configured", "aws")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
