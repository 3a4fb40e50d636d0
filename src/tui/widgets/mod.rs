//! Small building blocks shared by the views: number and time formatting, sparklines, gauges.

pub mod format;
pub mod spark;
