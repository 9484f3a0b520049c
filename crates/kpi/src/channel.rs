//! The channels a customer uses to reach the council and the classes they report under. The
//! closed sets themselves are the contract's (`channelshift_contract`), re-exported here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use channelshift_contract::{
    Channel, ChannelClass, CustomerType, Instrument, Interaction, Outcome, UnknownName,
};

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
        let mut classes = [ChannelClass::Other; Channel::ALL.len()];
        for &channel in Channel::ALL {
            classes[channel as usize] = channel.default_class();
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
}
