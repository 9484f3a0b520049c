//! Synthetic council contact and satisfaction data, produced to Kafka.
