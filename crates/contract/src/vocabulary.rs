//! The closed sets of the contract: channels, outcomes, customer types,
//! instruments. Their wire names are snake_case and stable.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a contract enum with its wire names, `as_str`, `ALL` and `FromStr`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in contract order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(value: &str) -> Result<Self, UnknownValue> {
                match value {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        value: value.to_string(),
                        allowed: &[$($wire),+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A value outside one of the contract's sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of {}", allowed.join(", "))]
pub struct UnknownValue {
    pub value: String,
    pub allowed: &'static [&'static str],
}

vocabulary!(
    /// How the customer reached the council.
    Channel {
        Web = "web",
        App = "app",
        Kiosk = "kiosk",
        Webchat = "webchat",
        Email = "email",
        Social = "social",
        Phone = "phone",
        Ivr = "ivr",
        FaceToFace = "face_to_face",
        Post = "post",
        Other = "other",
    }
);

vocabulary!(
    /// Channels grouped as councils report them; the mapping is configurable,
    /// [`Channel::default_class`] is the documented default.
    ChannelClass {
        DigitalSelfService = "digital_self_service",
        DigitalAssisted = "digital_assisted",
        Telephone = "telephone",
        FaceToFace = "face_to_face",
        Paper = "paper",
        Other = "other",
    }
);

impl Channel {
    /// The default channel class of `shared/domain.md`.
    pub fn default_class(self) -> ChannelClass {
        match self {
            Channel::Web | Channel::App | Channel::Kiosk => ChannelClass::DigitalSelfService,
            Channel::Webchat | Channel::Email | Channel::Social => ChannelClass::DigitalAssisted,
            Channel::Phone | Channel::Ivr => ChannelClass::Telephone,
            Channel::FaceToFace => ChannelClass::FaceToFace,
            Channel::Post => ChannelClass::Paper,
            Channel::Other => ChannelClass::Other,
        }
    }
}

vocabulary!(
    /// What kind of contact it was; only transactions count toward take-up.
    Interaction {
        Transaction = "transaction",
        Information = "information",
        Chase = "chase",
        Complaint = "complaint",
    }
);

vocabulary!(
    /// How the contact ended.
    Outcome {
        Completed = "completed",
        Ineligible = "ineligible",
        Abandoned = "abandoned",
        Failed = "failed",
        Transferred = "transferred",
    }
);

impl Outcome {
    /// Completed or ineligible: the service did its job (GDS completion).
    pub fn is_completed(self) -> bool {
        matches!(self, Outcome::Completed | Outcome::Ineligible)
    }
}

vocabulary!(
    /// Who the customer was.
    CustomerType {
        Resident = "resident",
        Business = "business",
        Visitor = "visitor",
        Organisation = "organisation",
        Unknown = "unknown",
    }
);

vocabulary!(
    /// The survey question a score answers; scores are never mixed across instruments.
    Instrument {
        Csat5 = "csat5",
        Govmetric3 = "govmetric3",
        Nps11 = "nps11",
        Ces7 = "ces7",
    }
);

impl Instrument {
    /// The inclusive range of valid scores.
    pub fn scale(self) -> (u8, u8) {
        match self {
            Instrument::Csat5 => (1, 5),
            Instrument::Govmetric3 => (1, 3),
            Instrument::Nps11 => (0, 10),
            Instrument::Ces7 => (1, 7),
        }
    }
}

vocabulary!(
    /// How the survey was answered.
    SurveyMode {
        Web = "web",
        Email = "email",
        Sms = "sms",
        Ivr = "ivr",
        Kiosk = "kiosk",
        Agent = "agent",
        Paper = "paper",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_from_str_and_serde() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(*channel));
            let json = serde_json::to_string(channel).expect("enums serialise");
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
        }
    }

    #[test]
    fn unknown_value_lists_the_allowed_set() {
        let error = "fax".parse::<Channel>().expect_err("fax is not a channel");
        assert!(error.to_string().contains("face_to_face"));
    }

    #[test]
    fn default_classes_follow_the_domain_mapping() {
        assert_eq!(
            Channel::Kiosk.default_class(),
            ChannelClass::DigitalSelfService
        );
        assert_eq!(
            Channel::Webchat.default_class(),
            ChannelClass::DigitalAssisted
        );
        assert_eq!(Channel::Ivr.default_class(), ChannelClass::Telephone);
        assert_eq!(Channel::Post.default_class(), ChannelClass::Paper);
    }
}
