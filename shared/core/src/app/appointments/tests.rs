//! Unit tests of appointments and reminders against the in-memory store.
