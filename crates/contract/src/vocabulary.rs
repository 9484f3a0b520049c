//! The closed sets of the contract: channels, outcomes, customer types,
//! instruments. Their wire names are snake_case and stable.

/// Declares a closed set with its wire names: `as_str`, `ALL`, `FromStr`,
/// `Display` and serde all come from the one list, so they cannot drift apart.
/// `$kind` names the set in an [`UnknownName`] error. Exported for the other
/// closed sets of the product (polarity, RAG, period kinds…); the calling
/// crate needs `serde` as a dependency.
#[macro_export]
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name, also used in configuration and in outputs.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::UnknownName;
            fn from_str(value: &str) -> ::core::result::Result<Self, $crate::UnknownName> {
                match value {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::UnknownName {
                        kind: $kind,
                        value: value.to_string(),
                        allowed: &[$($wire),+],
                    }),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__utoipa::PartialSchema for $name {
            fn schema() -> $crate::__utoipa::openapi::RefOr<$crate::__utoipa::openapi::schema::Schema> {
                $crate::vocabulary_schema($kind, &[$($wire),+])
            }
        }

        impl $crate::__utoipa::ToSchema for $name {}
    };
}

/// A string schema with a description, for the OpenAPI document.
pub(crate) fn string_schema(description: &str) -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
}

/// The OpenAPI schema of a closed set: a string, one of `names`.
#[doc(hidden)]
pub fn vocabulary_schema(
    kind: &str,
    names: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    string_schema(&format!("{article} {kind}"))
        .enum_values(Some(names.iter().copied()))
        .into()
}

/// A name outside one of the closed sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; one of {}", allowed.join(", "))]
pub struct UnknownName {
    /// Which set was being parsed, e.g. `"channel"`.
    pub kind: &'static str,
    /// The name as given.
    pub value: String,
    pub allowed: &'static [&'static str],
}

crate::vocabulary!(
    /// How the customer reached the council.
    Channel, "channel" {
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

crate::vocabulary!(
    /// Channels grouped as councils report them; the mapping is configurable,
    /// [`Channel::default_class`] is the documented default.
    ChannelClass, "channel class" {
        DigitalSelfService = "digital_self_service",
        DigitalAssisted = "digital_assisted",
        Telephone = "telephone",
        FaceToFace = "face_to_face",
        Paper = "paper",
        Other = "other",
    }
);

impl Channel {
    /// The default channel class of `shared/domain.md`: digital_self_service: web, app,
    /// kiosk · digital_assisted: webchat, email, social · telephone: phone, ivr ·
    /// face_to_face · paper: post · other.
    pub const fn default_class(self) -> ChannelClass {
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

crate::vocabulary!(
    /// What kind of contact it was; only transactions count toward take-up and completion.
    #[derive(Default)]
    Interaction, "interaction" {
        /// A change of records, a payment, a booking, an application, a report. The wire
        /// contract's default when `interaction` is absent.
        #[default]
        Transaction = "transaction",
        Information = "information",
        /// Progress chasing.
        Chase = "chase",
        Complaint = "complaint",
    }
);

crate::vocabulary!(
    /// How the contact ended.
    Outcome, "outcome" {
        Completed = "completed",
        /// The service did its job; the customer was not eligible.
        Ineligible = "ineligible",
        Abandoned = "abandoned",
        /// An error stopped the transaction.
        Failed = "failed",
        /// Sent to another channel.
        Transferred = "transferred",
    }
);

impl Outcome {
    /// Completed or ineligible: the service did its job, so the transaction counts as
    /// completed (GDS completion).
    pub const fn is_completed(self) -> bool {
        matches!(self, Outcome::Completed | Outcome::Ineligible)
    }
}

crate::vocabulary!(
    /// Who the customer was, for breaking figures down (e.g. business / individual).
    #[derive(Default)]
    CustomerType, "customer type" {
        Resident = "resident",
        Business = "business",
        Visitor = "visitor",
        Organisation = "organisation",
        /// The wire contract's default for a satisfaction response without `customer_type`.
        #[default]
        Unknown = "unknown",
    }
);

crate::vocabulary!(
    /// The survey question a score answers; scores are never mixed across instruments.
    Instrument, "instrument" {
        /// GDS "Overall, how satisfied…", 1–5.
        Csat5 = "csat5",
        /// 1 poor, 2 average, 3 good.
        Govmetric3 = "govmetric3",
        /// Net Promoter, 0–10.
        Nps11 = "nps11",
        /// Customer effort agreement, 1–7.
        Ces7 = "ces7",
    }
);

impl Instrument {
    /// The inclusive range of valid scores: (lowest, highest).
    pub const fn scale(self) -> (u8, u8) {
        match self {
            Instrument::Csat5 => (1, 5),
            Instrument::Govmetric3 => (1, 3),
            Instrument::Nps11 => (0, 10),
            Instrument::Ces7 => (1, 7),
        }
    }
}

crate::vocabulary!(
    /// How the survey was answered.
    SurveyMode, "survey mode" {
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
    use std::fmt;
    use std::str::FromStr;

    #[test]
    fn wire_names_round_trip_through_from_str_and_serde() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(*channel));
            let json = serde_json::to_string(channel).expect("enums serialise");
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
        }
    }

    #[test]
    fn every_name_round_trips_through_from_str() {
        fn round_trip<T: FromStr<Err = UnknownName> + Copy + PartialEq + fmt::Debug>(
            all: &[T],
            name: fn(T) -> &'static str,
        ) {
            for &value in all {
                assert_eq!(name(value).parse::<T>(), Ok(value));
            }
        }
        round_trip(Channel::ALL, Channel::as_str);
        round_trip(ChannelClass::ALL, ChannelClass::as_str);
        round_trip(Interaction::ALL, Interaction::as_str);
        round_trip(Outcome::ALL, Outcome::as_str);
        round_trip(CustomerType::ALL, CustomerType::as_str);
        round_trip(Instrument::ALL, Instrument::as_str);
        round_trip(SurveyMode::ALL, SurveyMode::as_str);
    }

    #[test]
    fn unknown_name_says_which_set_and_lists_the_allowed_values() {
        let error = "fax".parse::<Channel>().expect_err("fax is not a channel");
        assert!(error
            .to_string()
            .starts_with("unknown channel `fax`; one of web, app"));
        assert!(error.to_string().contains("face_to_face"));
        // Names are exact: the wire contract is lower case.
        assert!("Web".parse::<Channel>().is_err());
    }

    #[test]
    fn serde_rejects_an_unknown_name_as_an_unknown_variant() {
        let error =
            serde_json::from_str::<Channel>("\"carrier_pigeon\"").expect_err("not a channel");
        assert!(error
            .to_string()
            .starts_with("unknown variant `carrier_pigeon`"));
    }

    #[test]
    fn absent_optional_fields_take_the_contracts_defaults() {
        assert_eq!(Interaction::default(), Interaction::Transaction);
        assert_eq!(CustomerType::default(), CustomerType::Unknown);
    }

    #[test]
    fn ineligible_counts_as_completed_but_abandoned_does_not() {
        assert!(Outcome::Completed.is_completed());
        assert!(Outcome::Ineligible.is_completed());
        assert!(!Outcome::Abandoned.is_completed());
        assert!(!Outcome::Failed.is_completed());
        assert!(!Outcome::Transferred.is_completed());
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
