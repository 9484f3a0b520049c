//! Channel mix: each channel's and each class's share of all contacts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::channel::{Channel, ChannelClass, ChannelClasses, ContactsByChannel};
use crate::interval::Rate;

/// Every channel's and every class's share of `contacts` (all of them, zero shares included,
/// so a report's rows do not depend on the data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelMix {
    /// All contacts: the n of every share.
    pub contacts: u64,
    pub by_channel: BTreeMap<Channel, Rate>,
    pub by_class: BTreeMap<ChannelClass, Rate>,
}

/// The channel mix of `contacts`, with classes taken from `classes`.
pub fn channel_mix(contacts: &ContactsByChannel, classes: &ChannelClasses) -> ChannelMix {
    let total = contacts.values().sum();
    let of_channel = |channel| contacts.get(&channel).copied().unwrap_or(0);
    let by_channel = Channel::ALL
        .iter()
        .map(|&channel| (channel, Rate::new(of_channel(channel), total)))
        .collect();
    let by_class = ChannelClass::ALL
        .iter()
        .map(|&class| {
            let in_class = classes.channels_in(class).map(of_channel).sum();
            (class, Rate::new(in_class, total))
        })
        .collect();
    ChannelMix {
        contacts: total,
        by_channel,
        by_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_of_all_contacts_per_channel_and_class() {
        // web 50 + app 10 = 60 digital self-service; phone 30 + ivr 10 = 40 telephone; n = 100.
        let contacts = ContactsByChannel::from([
            (Channel::Web, 50),
            (Channel::App, 10),
            (Channel::Phone, 30),
            (Channel::Ivr, 10),
        ]);
        let mix = channel_mix(&contacts, &ChannelClasses::default());
        assert_eq!(mix.contacts, 100);
        assert_eq!(mix.by_channel[&Channel::Web].percent(), Some(50.0));
        assert_eq!(mix.by_channel[&Channel::Post].percent(), Some(0.0));
        assert_eq!(
            mix.by_class[&ChannelClass::DigitalSelfService].percent(),
            Some(60.0)
        );
        assert_eq!(mix.by_class[&ChannelClass::Telephone].numerator(), 40);
        assert_eq!(mix.by_class[&ChannelClass::Telephone].denominator(), 100);
        assert_eq!(mix.by_channel.len(), Channel::ALL.len());
        assert_eq!(mix.by_class.len(), ChannelClass::ALL.len());
    }

    #[test]
    fn reclassified_channel_moves_its_share() {
        let contacts = ContactsByChannel::from([(Channel::Webchat, 20), (Channel::Web, 80)]);
        let mut classes = ChannelClasses::default();
        classes.set(Channel::Webchat, ChannelClass::DigitalSelfService);
        let mix = channel_mix(&contacts, &classes);
        assert_eq!(
            mix.by_class[&ChannelClass::DigitalSelfService].percent(),
            Some(100.0)
        );
        assert_eq!(
            mix.by_class[&ChannelClass::DigitalAssisted].percent(),
            Some(0.0)
        );
    }
}
