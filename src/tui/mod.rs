//! The terminal dashboard: shared state and `update` (app), each view's and modal's own state and
//! keys (components), events and effects, the view model, drawing (views, widgets), themes and key
//! bindings.

pub mod app;
pub mod components;
pub mod cursor;
pub mod effect;
pub mod event;
pub mod follow;
pub mod keymap;
pub mod live;
pub mod model;
pub mod runtime;
pub mod sample;
pub mod terminal;
pub mod theme;
pub mod trends;
pub mod views;
pub mod waste;
pub mod widgets;
