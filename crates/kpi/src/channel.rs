//! The channels a customer uses to reach the council, the classes they roll up into, and the
//! other closed vocabularies of a contact and a satisfaction response.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// A name that is not a member of one of the domain's closed sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownName {
    /// Which set was being parsed, e.g. `"channel"`.
    pub kind: &'static str,
    /// The name as given.
    pub value: String,
}

domain_enum! {
    /// How a customer reached the council.
    Channel, "channel" {
        Web => "web",
        App => "app",
        Kiosk => "kiosk",
        Webchat => "webchat",
        Email => "email",
        Social => "social",
        Phone => "phone",
        Ivr => "ivr",
        FaceToFace => "face_to_face",
        Post => "post",
        Other => "other",
    }
}

domain_enum! {
    /// The group a channel reports under; digital take-up and completion are about
    /// [`ChannelClass::DigitalSelfService`].
    ChannelClass, "channel class" {
        DigitalSelfService => "digital_self_service",
        DigitalAssisted => "digital_assisted",
        Telephone => "telephone",
        FaceToFace => "face_to_face",
        Paper => "paper",
        Other => "other",
    }
}

domain_enum! {
    /// How a contact ended.
    Outcome, "outcome" {
        Completed => "completed",
        /// The service did its job; the customer was not eligible.
        Ineligible => "ineligible",
        Abandoned => "abandoned",
        /// An error stopped the transaction.
        Failed => "failed",
        /// Sent to another channel.
        Transferred => "transferred",
    }
}

impl Outcome {
    /// Whether the outcome counts as a completed transaction (GDS: completed or ineligible,
    /// because an ineligible customer was still served to the end).
    pub const fn is_completed(self) -> bool {
        matches!(self, Outcome::Completed | Outcome::Ineligible)
    }
}

domain_enum! {
    /// What the contact was for; only transactions count towards take-up and completion.
    #[derive(Default)]
    Interaction, "interaction" {
        /// A change of records, a payment, a booking, an application, a report. The wire
        /// contract's default when `interaction` is absent.
        #[default]
        Transaction => "transaction",
        Information => "information",
        /// Progress chasing.
        Chase => "chase",
        Complaint => "complaint",
    }
}

domain_enum! {
    /// Who the customer was, for breaking figures down (e.g. business / individual).
    #[derive(Default)]
    CustomerType, "customer type" {
        Resident => "resident",
        Business => "business",
        Visitor => "visitor",
        Organisation => "organisation",
        /// The wire contract's default for a satisfaction response without `customer_type`.
        #[default]
        Unknown => "unknown",
    }
}

domain_enum! {
    /// A satisfaction survey instrument; scores from different instruments are never combined.
    Instrument, "instrument" {
        /// GDS "Overall, how satisfied…", 1–5.
        Csat5 => "csat5",
        /// 1 poor, 2 average, 3 good.
        Govmetric3 => "govmetric3",
        /// Net Promoter, 0–10.
        Nps11 => "nps11",
        /// Customer effort agreement, 1–7.
        Ces7 => "ces7",
    }
}

impl Instrument {
    /// The scores the instrument can give, both ends included.
    pub const fn score_range(self) -> RangeInclusive<u8> {
        match self {
            Instrument::Csat5 => 1..=5,
            Instrument::Govmetric3 => 1..=3,
            Instrument::Nps11 => 0..=10,
            Instrument::Ces7 => 1..=7,
        }
    }
}

/// Contacts counted per channel: the input of channel mix, cost per transaction and savings.
pub type ContactsByChannel = BTreeMap<Channel, u64>;

/// Which class each channel reports under. `Default` is the documented mapping; a council can
/// move a channel to another class.
///
/// Serialised as a map from channel to class; deserialising applies the given entries on top of
/// the default, so a configuration only lists the channels it moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<Channel, ChannelClass>",
    into = "BTreeMap<Channel, ChannelClass>"
)]
pub struct ChannelClasses {
    // Indexed by the channel's declaration order, so every channel always has a class.
    classes: [ChannelClass; Channel::ALL.len()],
}

impl ChannelClasses {
    /// The class `channel` reports under.
    pub fn class_of(&self, channel: Channel) -> ChannelClass {
        self.classes[channel as usize]
    }

    /// Moves `channel` into `class`.
    pub fn set(&mut self, channel: Channel, class: ChannelClass) {
        self.classes[channel as usize] = class;
    }

    /// The channels currently in `class`.
    pub fn channels_in(&self, class: ChannelClass) -> impl Iterator<Item = Channel> + '_ {
        Channel::ALL
            .iter()
            .copied()
            .filter(move |&channel| self.class_of(channel) == class)
    }
}

impl Default for ChannelClasses {
    /// digital_self_service: web, app, kiosk · digital_assisted: webchat, email, social ·
    /// telephone: phone, ivr · face_to_face · paper: post · other.
    fn default() -> Self {
        let class = |channel: Channel| match channel {
            Channel::Web | Channel::App | Channel::Kiosk => ChannelClass::DigitalSelfService,
            Channel::Webchat | Channel::Email | Channel::Social => ChannelClass::DigitalAssisted,
            Channel::Phone | Channel::Ivr => ChannelClass::Telephone,
            Channel::FaceToFace => ChannelClass::FaceToFace,
            Channel::Post => ChannelClass::Paper,
            Channel::Other => ChannelClass::Other,
        };
        let mut classes = [ChannelClass::Other; Channel::ALL.len()];
        for &channel in Channel::ALL {
            classes[channel as usize] = class(channel);
        }
        ChannelClasses { classes }
    }
}

impl From<BTreeMap<Channel, ChannelClass>> for ChannelClasses {
    fn from(overrides: BTreeMap<Channel, ChannelClass>) -> Self {
        let mut classes = ChannelClasses::default();
        for (channel, class) in overrides {
            classes.set(channel, class);
        }
        classes
    }
}

impl From<ChannelClasses> for BTreeMap<Channel, ChannelClass> {
    fn from(classes: ChannelClasses) -> Self {
        Channel::ALL
            .iter()
            .map(|&channel| (channel, classes.class_of(channel)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error as ValueError, StrDeserializer};
    use serde::de::IntoDeserializer;

    #[test]
    fn every_name_round_trips_through_from_str() {
        for &channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
        }
        for &class in ChannelClass::ALL {
            assert_eq!(class.as_str().parse::<ChannelClass>(), Ok(class));
        }
        for &outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        for &interaction in Interaction::ALL {
            assert_eq!(interaction.as_str().parse::<Interaction>(), Ok(interaction));
        }
        for &customer in CustomerType::ALL {
            assert_eq!(customer.as_str().parse::<CustomerType>(), Ok(customer));
        }
        for &instrument in Instrument::ALL {
            assert_eq!(instrument.as_str().parse::<Instrument>(), Ok(instrument));
        }
    }

    #[test]
    fn names_are_the_wire_contracts_snake_case() {
        assert_eq!(Channel::FaceToFace.as_str(), "face_to_face");
        assert_eq!(
            ChannelClass::DigitalSelfService.as_str(),
            "digital_self_service"
        );
        assert_eq!(Instrument::Govmetric3.to_string(), "govmetric3");
        assert_eq!(Channel::ALL.len(), 11);
        assert_eq!(ChannelClass::ALL.len(), 6);
    }

    #[test]
    fn unknown_name_says_which_set_and_value() {
        let error = "fax".parse::<Channel>().expect_err("fax is not a channel");
        assert_eq!(error.to_string(), "unknown channel `fax`");
        // Names are exact: the wire contract is lower case.
        assert!("Web".parse::<Channel>().is_err());
    }

    #[test]
    fn serde_reads_the_snake_case_name() {
        let name: StrDeserializer<'_, ValueError> = "face_to_face".into_deserializer();
        assert_eq!(Channel::deserialize(name), Ok(Channel::FaceToFace));
        let bad: StrDeserializer<'_, ValueError> = "carrier_pigeon".into_deserializer();
        assert!(Channel::deserialize(bad).is_err());
    }

    #[test]
    fn default_classes_follow_the_documented_mapping() {
        let classes = ChannelClasses::default();
        let in_class = |class| classes.channels_in(class).collect::<Vec<_>>();
        use Channel::*;
        assert_eq!(
            in_class(ChannelClass::DigitalSelfService),
            [Web, App, Kiosk]
        );
        assert_eq!(
            in_class(ChannelClass::DigitalAssisted),
            [Webchat, Email, Social]
        );
        assert_eq!(in_class(ChannelClass::Telephone), [Phone, Ivr]);
        assert_eq!(in_class(ChannelClass::FaceToFace), [FaceToFace]);
        assert_eq!(in_class(ChannelClass::Paper), [Post]);
        assert_eq!(in_class(ChannelClass::Other), [Other]);
    }

    #[test]
    fn configured_classes_override_only_the_channels_named() {
        let overrides = BTreeMap::from([(Channel::Webchat, ChannelClass::DigitalSelfService)]);
        let classes = ChannelClasses::from(overrides);
        assert_eq!(
            classes.class_of(Channel::Webchat),
            ChannelClass::DigitalSelfService
        );
        assert_eq!(
            classes.class_of(Channel::Email),
            ChannelClass::DigitalAssisted
        );
    }

    #[test]
    fn absent_optional_fields_take_the_contracts_defaults() {
        assert_eq!(Interaction::default(), Interaction::Transaction);
        assert_eq!(CustomerType::default(), CustomerType::Unknown);
    }

    #[test]
    fn instrument_scales_match_the_contract() {
        assert_eq!(Instrument::Csat5.score_range(), 1..=5);
        assert_eq!(Instrument::Govmetric3.score_range(), 1..=3);
        assert_eq!(Instrument::Nps11.score_range(), 0..=10);
        assert_eq!(Instrument::Ces7.score_range(), 1..=7);
    }

    #[test]
    fn ineligible_counts_as_completed_but_abandoned_does_not() {
        assert!(Outcome::Completed.is_completed());
        assert!(Outcome::Ineligible.is_completed());
        assert!(!Outcome::Abandoned.is_completed());
        assert!(!Outcome::Failed.is_completed());
        assert!(!Outcome::Transferred.is_completed());
    }
}
