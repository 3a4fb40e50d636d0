//! `autovolt schedule`: add, list, enable, disable and remove the schedules the collectors run.

use super::exit::{Failure, OK};
use super::{confirm, input, Ctx};
use crate::domain::activity::action;
use crate::domain::schedule::{day_names, parse_days};
use crate::domain::{
    ActivityLog, Device, Id, Instant, Schedule, ScheduleType, ScheduledSwitch, SwitchType,
    TriggeredBy,
};
use crate::store::Store;
use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::Subcommand;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Switch a classroom's loads on or off at a time of day: daily, on some days of the week,
    /// or once. The collectors run them (`autovolt collect`), once across all of them.
    Schedule {
        #[command(subcommand)]
        action: ScheduleAction,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleAction {
    /// Add a schedule for a classroom's switches (all of them, or those of one type). Daily
    /// unless --days or --once says otherwise.
    Add {
        /// The classroom, by name.
        #[arg(long, value_parser = classroom)]
        classroom: String,
        /// Campus-local time of day, HH:MM (00:00 to 23:59).
        #[arg(long, value_parser = time_of_day)]
        at: String,
        /// Switch the loads on or off.
        #[arg(long)]
        action: OnOff,
        /// Only the switches of this type: light, fan, projector, ac, outlet or computer.
        #[arg(long, value_parser = switch_type)]
        switch_type: Option<SwitchType>,
        /// Weekly, on these days: mon,tue,wed,thu,fri,sat,sun.
        #[arg(long, conflicts_with = "once", value_parser = days)]
        days: Option<Days>,
        /// Once, on this campus-local day, YYYY-MM-DD (today or later).
        #[arg(long, value_parser = input::day)]
        once: Option<NaiveDate>,
        /// Its name (default: classroom, action and time, e.g. "CS-101 off 18:00").
        #[arg(long, value_parser = input::name)]
        name: Option<String>,
    },
    /// Every schedule: id, name, when, action, switches, enabled, next run (campus time).
    List,
    /// Stop running a schedule (it is kept).
    Disable {
        /// Its id (as `schedule list` shows it) or its name.
        id: String,
    },
    /// Run a disabled schedule again.
    Enable {
        /// Its id (as `schedule list` shows it) or its name.
        id: String,
    },
    /// Remove a schedule (its past runs stay recorded).
    Rm {
        /// Its id (as `schedule list` shows it) or its name.
        id: String,
        /// Do not ask first (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

fn classroom(raw: &str) -> Result<String, String> {
    let t = input::printable("classroom", raw, 50).map_err(|e| e.rule)?;
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(t)
}

fn time_of_day(raw: &str) -> Result<String, String> {
    let (h, m) = crate::domain::validation::time_of_day("at", raw.trim()).map_err(|e| e.rule)?;
    Ok(format!("{h:02}:{m:02}"))
}

fn switch_type(raw: &str) -> Result<SwitchType, String> {
    let t = SwitchType::parse(raw.trim().to_ascii_lowercase().as_str());
    if t.is_known() {
        Ok(t)
    } else {
        Err("must be light, fan, projector, ac, outlet or computer".into())
    }
}

/// Days of the week, 0 = Sunday (one argument: `mon,wed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Days(pub Vec<i32>);

fn days(raw: &str) -> Result<Days, String> {
    if raw.chars().count() > 100 {
        return Err("must be at most 100 characters".into());
    }
    parse_days(raw).map(Days)
}

fn id_arg(raw: &str) -> Result<String, Failure> {
    let t = input::printable("id", raw, 100)?;
    if t.is_empty() {
        return Err(Failure::unusable(
            "give the schedule's id or name; `autovolt schedule list` shows them",
        ));
    }
    Ok(t)
}

pub async fn run(command: ScheduleCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let ScheduleCommand::Schedule { action } = command;
    let tz = ctx.tz()?;
    match action {
        ScheduleAction::Add {
            classroom,
            at,
            action,
            switch_type,
            days,
            once,
            name,
        } => {
            let now = crate::domain::dates::now_millis();
            if let Some(d) = once {
                let today = crate::domain::interval::local_date(now, tz);
                if d < today {
                    return Err(Failure::unusable(format!(
                        "--once {d} is in the past (today is {today}, campus time); give today or a later day"
                    )));
                }
            }
            let operator = ctx.operator()?;
            let store = ctx.open().await?;
            let request = AddRequest {
                classroom,
                at,
                on: action == OnOff::On,
                switch_type,
                days: days.map(|d| d.0),
                once,
                name,
            };
            let result = add(ctx, &store, tz, request, &operator, now).await;
            store.close().await;
            result
        }
        ScheduleAction::List => {
            let store = ctx.open().await?;
            let result = list(ctx, &store, tz).await;
            store.close().await;
            result
        }
        ScheduleAction::Disable { id } => switch_enabled(ctx, tz, &id, false).await,
        ScheduleAction::Enable { id } => switch_enabled(ctx, tz, &id, true).await,
        ScheduleAction::Rm { id, yes } => {
            let key = id_arg(&id)?;
            let operator = ctx.operator()?;
            let store = ctx.open().await?;
            let result = remove(ctx, &store, tz, &key, yes, &operator).await;
            store.close().await;
            result
        }
    }
}

struct AddRequest {
    classroom: String,
    at: String,
    on: bool,
    switch_type: Option<SwitchType>,
    days: Option<Vec<i32>>,
    once: Option<NaiveDate>,
    name: Option<String>,
}

async fn add(
    ctx: &Ctx,
    store: &Store,
    tz: Tz,
    r: AddRequest,
    operator: &str,
    now: Instant,
) -> Result<i32, Failure> {
    let room = store.classroom_named(&r.classroom).await?;
    let room_id = room
        .id
        .ok_or_else(|| Failure::unusable(format!("the classroom {:?} has no id", room.name)))?;
    let devices = store.devices_in_classroom(room_id).await?;
    let mut switches: Vec<ScheduledSwitch> = Vec::new();
    for d in &devices {
        let Some(id) = d.id else { continue };
        for s in &d.switches {
            if r.switch_type.as_ref().is_none_or(|t| &s.switch_type == t) {
                switches.push(ScheduledSwitch {
                    device_id: id,
                    switch_id: s.switch_id.clone(),
                });
            }
        }
    }
    if switches.is_empty() {
        let mut types: Vec<&str> = devices
            .iter()
            .flat_map(|d| d.switches.iter().map(|s| s.switch_type.as_str()))
            .collect();
        types.sort_unstable();
        types.dedup();
        return Err(Failure::unusable(
            match (&r.switch_type, types.is_empty()) {
                (_, true) => format!(
                    "the classroom {:?} has no switches; register its boards first",
                    room.name
                ),
                (Some(t), false) => format!(
                    "the classroom {:?} has no {} switch; it has: {}",
                    room.name,
                    t.as_str(),
                    types.join(", ")
                ),
                (None, false) => format!("the classroom {:?} has no switches", room.name),
            },
        ));
    }
    let action = if r.on { "on" } else { "off" };
    let (schedule_type, days) = match (&r.days, r.once) {
        (Some(d), _) => (ScheduleType::Weekly, d.clone()),
        (None, Some(_)) => (ScheduleType::Once, Vec::new()),
        (None, None) => (ScheduleType::Daily, Vec::new()),
    };
    let name = r.name.clone().unwrap_or_else(|| {
        let what = r
            .switch_type
            .as_ref()
            .map(|t| format!(" {}", t.as_str()))
            .unwrap_or_default();
        let when = match schedule_type {
            ScheduleType::Weekly => format!(" {}", day_names(&days)),
            ScheduleType::Once => format!(" {}", r.once.map(|d| d.to_string()).unwrap_or_default()),
            _ => String::new(),
        };
        format!("{}{what} {action} {}{when}", room.name, r.at)
    });
    let mut schedule = Schedule {
        id: None,
        name,
        schedule_type,
        time: r.at.clone(),
        days,
        date: r.once.map(|d| d.to_string()),
        action: action.into(),
        switches,
        enabled: true,
        created_by: None,
        created_at: None,
        updated_at: None,
    };
    let id = store.insert_schedule(&schedule).await?;
    schedule.id = Some(id);
    log_change(store, &schedule, "added", operator, now).await?;
    let rooms = BTreeMap::from([(room_id, room.name.clone())]);
    let by_device: BTreeMap<Id, Device> = devices
        .into_iter()
        .filter_map(|d| Some((d.id?, d)))
        .collect();
    let row = describe(ctx, &schedule, tz, &by_device, &rooms, now);
    ctx.show(row.json.clone(), || {
        format!(
            "Added schedule {} {:?}: {} {}, {} switch(es) in {}; next run {}",
            id.to_hex(),
            schedule.name,
            schedule.describe_when(tz),
            schedule.action,
            schedule.switches.len(),
            room.name,
            row.next
        )
    });
    Ok(OK)
}

/// A schedule as `list` and `add` show it.
struct Row {
    json: serde_json::Value,
    next: String,
    text: String,
}

fn describe(
    ctx: &Ctx,
    s: &Schedule,
    tz: Tz,
    devices: &BTreeMap<Id, Device>,
    rooms: &BTreeMap<Id, String>,
    now: Instant,
) -> Row {
    let mut classrooms: Vec<String> = s
        .switches
        .iter()
        .filter_map(|w| devices.get(&w.device_id)?.classroom)
        .filter_map(|c| rooms.get(&c).cloned())
        .collect();
    classrooms.sort();
    classrooms.dedup();
    let next_at = if s.enabled {
        s.next_after(now, tz)
    } else {
        None
    };
    let next = match (s.enabled, next_at) {
        (false, _) => "— (disabled)".to_string(),
        (true, Some(t)) => ctx.time(t),
        (true, None) => "— (none left)".to_string(),
    };
    let id = s.id.map(|i| i.to_hex()).unwrap_or_default();
    let json = json!({
        "id": id,
        "name": s.name,
        "type": s.schedule_type.as_str(),
        "time": s.time,
        "days": s.days,
        "date": s.date,
        "action": s.action,
        "switches": s.switches.len(),
        "classrooms": classrooms,
        "enabled": s.enabled,
        "nextRun": next_at.map(|t| t.to_rfc3339()),
        "nextRunLocal": next_at.map(|t| ctx.time(t)),
    });
    let text = format!(
        "{id}  {:<28} {:<24} {:<3} {:>3} sw  {:<16} {:<8} next {next}",
        truncate(&s.name, 28),
        s.describe_when(tz),
        s.action,
        s.switches.len(),
        truncate(&classrooms.join(","), 16),
        if s.enabled { "enabled" } else { "disabled" },
    );
    Row { json, next, text }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

async fn list(ctx: &Ctx, store: &Store, tz: Tz) -> Result<i32, Failure> {
    let schedules = store.schedules().await?;
    let devices: BTreeMap<Id, Device> = store
        .devices()
        .await?
        .into_iter()
        .filter_map(|d| Some((d.id?, d)))
        .collect();
    let rooms: BTreeMap<Id, String> = store
        .classrooms()
        .await?
        .into_iter()
        .filter_map(|c| Some((c.id?, c.name)))
        .collect();
    let now = crate::domain::dates::now_millis();
    let rows: Vec<Row> = schedules
        .iter()
        .map(|s| describe(ctx, s, tz, &devices, &rooms, now))
        .collect();
    ctx.show(
        json!(rows.iter().map(|r| r.json.clone()).collect::<Vec<_>>()),
        || {
            if rows.is_empty() {
                return "No schedules. Add one with `autovolt schedule add`.".into();
            }
            rows.iter()
                .map(|r| r.text.clone())
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(OK)
}

async fn switch_enabled(ctx: &Ctx, tz: Tz, id: &str, enabled: bool) -> Result<i32, Failure> {
    let key = id_arg(id)?;
    let operator = ctx.operator()?;
    let store = ctx.open().await?;
    let result = set_enabled(ctx, &store, tz, &key, enabled, &operator).await;
    store.close().await;
    result
}

async fn set_enabled(
    ctx: &Ctx,
    store: &Store,
    tz: Tz,
    key: &str,
    enabled: bool,
    operator: &str,
) -> Result<i32, Failure> {
    {
        let mut s = store.schedule_named(key).await?;
        let sid =
            s.id.ok_or_else(|| Failure::unusable("the schedule has no id"))?;
        let word = if enabled { "enabled" } else { "disabled" };
        let now = crate::domain::dates::now_millis();
        if s.enabled != enabled {
            if !store.set_schedule_enabled(sid, enabled).await? {
                return Err(Failure::unusable(format!(
                    "the schedule {:?} was removed meanwhile",
                    s.name
                )));
            }
            s.enabled = enabled;
            log_change(store, &s, word, operator, now).await?;
        }
        let next = if enabled {
            s.next_after(now, tz).map(|t| ctx.time(t))
        } else {
            None
        };
        ctx.show(
            json!({"id": sid.to_hex(), "name": s.name, "enabled": enabled, "nextRunLocal": next}),
            || {
                format!(
                    "Schedule {} {:?} is {word}{}",
                    sid.to_hex(),
                    s.name,
                    next.as_deref()
                        .map(|n| format!("; next run {n}"))
                        .unwrap_or_default()
                )
            },
        );
        Ok(OK)
    }
}

async fn remove(
    ctx: &Ctx,
    store: &Store,
    tz: Tz,
    key: &str,
    yes: bool,
    operator: &str,
) -> Result<i32, Failure> {
    let s = store.schedule_named(key).await?;
    let sid =
        s.id.ok_or_else(|| Failure::unusable("the schedule has no id"))?;
    confirm(
        &format!(
            "Remove the schedule {:?} ({} {})",
            s.name,
            s.describe_when(tz),
            s.action
        ),
        yes,
    )?;
    if store.delete_schedule(sid).await? {
        log_change(
            store,
            &s,
            "removed",
            operator,
            crate::domain::dates::now_millis(),
        )
        .await?;
    }
    ctx.show(
        json!({"id": sid.to_hex(), "name": s.name, "removed": true}),
        || format!("Removed schedule {} {:?}", sid.to_hex(), s.name),
    );
    Ok(OK)
}

/// Every change to a schedule is an activity entry.
async fn log_change(
    store: &Store,
    s: &Schedule,
    change: &str,
    operator: &str,
    now: Instant,
) -> Result<(), Failure> {
    let mut entry = ActivityLog::new(action::SCHEDULE_CHANGE, TriggeredBy::User, now);
    entry.user_name = Some(operator.to_string());
    entry.context = Some(json!({
        "change": change,
        "schedule": s.id.map(|i| i.to_hex()),
        "scheduleName": s.name,
        "type": s.schedule_type.as_str(),
        "time": s.time,
        "days": s.days,
        "date": s.date,
        "action": s.action,
        "switches": s.switches.len(),
        "enabled": s.enabled,
    }));
    store.log_activity(&entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{exit, parse, Command};
    use super::*;

    fn refused(args: &[&str]) -> String {
        let argv = ["autovolt", "schedule"]
            .into_iter()
            .chain(args.iter().copied());
        match parse(argv) {
            Ok(c) => panic!("{args:?} was accepted: {c:?}"),
            Err(f) => {
                assert_eq!(f.code, exit::UNUSABLE, "{args:?}: {}", f.message);
                f.message
            }
        }
    }

    #[test]
    fn bad_schedule_input_is_refused_before_any_work() {
        let add = ["add", "--classroom", "CS-101", "--action", "off"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            add.iter().chain(extra.iter()).copied().collect()
        };
        for bad in [
            with(&["--at", "24:00"]),
            with(&["--at", "7:00"]),
            with(&["--at", "18:00", "--days", "mon,xyz"]),
            with(&["--at", "18:00", "--days", ""]),
            with(&["--at", "18:00", "--days", "mon", "--once", "2026-12-01"]),
            with(&["--at", "18:00", "--once", "1999-01-01"]),
            with(&["--at", "18:00", "--switch-type", "heater"]),
            with(&["--at", "18:00", "--name", "a\u{1b}[31m"]),
            vec!["add", "--classroom", "", "--at", "18:00", "--action", "off"],
            vec![
                "add",
                "--classroom",
                "CS-101",
                "--at",
                "18:00",
                "--action",
                "toggle",
            ],
            vec!["rm"],
        ] {
            let m = refused(&bad);
            assert!(!m.chars().any(|c| c.is_control() && c != '\n'), "{m:?}");
        }
        let m = refused(&with(&["--at", "18:00", "--days", "mon,xyz"]));
        assert!(m.contains("sun,mon,tue"), "{m}");
    }

    #[test]
    fn a_weekly_schedule_parses_to_its_days() {
        let cli = parse([
            "autovolt",
            "schedule",
            "add",
            "--classroom",
            "CS-101",
            "--at",
            "8:00",
            "--action",
            "on",
            "--days",
            "Mon,wed",
            "--switch-type",
            "FAN",
        ]);
        assert!(cli.is_err(), "8:00 needs two digits");
        let cli = parse([
            "autovolt",
            "schedule",
            "add",
            "--classroom",
            "CS-101",
            "--at",
            "08:00",
            "--action",
            "on",
            "--days",
            "Mon,wed",
            "--switch-type",
            "FAN",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Schedule(ScheduleCommand::Schedule {
                action:
                    ScheduleAction::Add {
                        at,
                        days,
                        switch_type,
                        ..
                    },
            })) => {
                assert_eq!(at, "08:00");
                assert_eq!(days, Some(Days(vec![1, 3])));
                assert_eq!(switch_type, Some(SwitchType::Fan));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(["autovolt", "schedule", "list", "--json"]).is_ok());
        assert!(parse(["autovolt", "schedule", "rm", "x", "--yes"]).is_ok());
    }
}
