//! Small building blocks shared by the views: sparklines, gauges.

pub mod spark;
