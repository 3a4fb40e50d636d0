//! The dashboard's views and modals, each with its own state and keys. `App` routes keys and
//! events to them and applies what they answer; what the runtime must do comes back as effects.

pub mod activity;
pub mod aggregate;
pub mod all_off;
pub mod board;
pub mod classroom;
pub mod classrooms;
pub mod filter;
pub mod health;
pub mod help;
pub mod navigation;
pub mod sign_in;
pub mod tariff_edit;
pub mod trends;
