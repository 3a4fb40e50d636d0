//! Commands on the energy books: tariffs, aggregation, audit.

use super::exit::{Failure, FOUND, OK};
use super::{confirm, input, Ctx};
use crate::domain::dates::campus_time as local;
use crate::domain::tariff::{TariffChange, TariffTarget};
use crate::domain::typed_time::start;
use crate::domain::{Actor, CostVersion, Instant, TriggeredBy, ValidationError};
use crate::store::aggregation::{AggregationProgress, AggregationRequest};
use crate::store::Store;
use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::Subcommand;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum BooksCommand {
    /// The electricity tariff: set a new price, cancel one not started yet, show what is in
    /// force, list the history.
    Tariff {
        #[command(subcommand)]
        command: TariffCommand,
    },
    /// Build the daily and monthly rollups from the ledger (idempotent: a re-run changes nothing).
    /// Days up to today; more than 31 days ask first.
    #[command(group(clap::ArgGroup::new("period").required(true).args(["date", "from", "yesterday", "month"])))]
    Aggregate {
        /// One campus-local day, YYYY-MM-DD.
        #[arg(long, value_parser = input::day)]
        date: Option<NaiveDate>,
        /// First day of a range (with --to), YYYY-MM-DD.
        #[arg(long, requires = "to", value_parser = input::day)]
        from: Option<NaiveDate>,
        /// Last day of a range, inclusive.
        #[arg(long, requires = "from", value_parser = input::day)]
        to: Option<NaiveDate>,
        /// Yesterday, campus time.
        #[arg(long)]
        yesterday: bool,
        /// A month, YYYY-MM (up to today).
        #[arg(long, value_parser = input::month)]
        month: Option<NaiveDate>,
        /// Remove the locks of these days first, after a run died holding them.
        #[arg(long)]
        break_lock: bool,
        /// Do not ask before a long range (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Check the books: every ledger row against the energy and cost rules, rows crossing
    /// midnight, overlapping intervals, and every stored aggregate against its recomputation.
    /// Exit 0 when everything agrees, 1 when something does not, 2 when the database cannot be used.
    Audit {
        /// One campus-local day (default: this month so far).
        #[arg(long, conflicts_with_all = ["from", "to"], value_parser = input::day)]
        date: Option<NaiveDate>,
        /// First day of a range (with --to).
        #[arg(long, requires = "to", value_parser = input::day)]
        from: Option<NaiveDate>,
        /// Last day of a range, inclusive.
        #[arg(long, requires = "from", value_parser = input::day)]
        to: Option<NaiveDate>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TariffCommand {
    /// Start a new price (₹/kWh to the paisa, 0.01 to 100). Past ledger rows keep their cost.
    Set {
        /// ₹/kWh, like 7.50.
        #[arg(value_parser = input::price)]
        price: f64,
        /// `global`, `classroom:NAME` or `device:MAC|NAME|ID`.
        #[arg(long, default_value = "global")]
        scope: String,
        /// When the price starts: `now` (the default), `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` (campus
        /// time) or RFC 3339. Not before the start of the current price of the same scope, and at
        /// most a year ahead.
        #[arg(long)]
        from: Option<String>,
        /// Why the price changed (printable, at most 500 characters).
        #[arg(long, value_parser = input::note)]
        note: Option<String>,
    },
    /// Cancel a price that has not started yet (its id, from `tariff history`): the price before
    /// it stays in force.
    Cancel { id: String },
    /// The prices in force now, per scope, and the power settings' fallback price.
    Show,
    /// Every price ever set, newest first, with its id.
    History {
        /// Only this scope: `global`, `classroom:NAME` or `device:MAC|NAME|ID`.
        #[arg(long)]
        scope: Option<String>,
    },
}

impl BooksCommand {
    /// What can be checked before connecting: scopes, ranges, how far ahead a price may start.
    pub fn check(&self) -> Result<(), Failure> {
        match self {
            BooksCommand::Tariff {
                command: TariffCommand::Set { scope, from, .. },
            } => {
                parse_scope(scope)?;
                if let Some(f) = from {
                    // Campus time is not known yet: UTC is within a day of it.
                    if let Some(at) = start(f, chrono_tz::UTC)? {
                        check_lead(at, f, chrono::Duration::days(1))?;
                    }
                }
            }
            BooksCommand::Tariff {
                command: TariffCommand::History { scope: Some(scope) },
            } => {
                parse_scope(scope)?;
            }
            BooksCommand::Tariff {
                command: TariffCommand::Cancel { id },
            } => {
                cost_version_id(id)?;
            }
            BooksCommand::Aggregate {
                from: Some(f),
                to: Some(t),
                ..
            }
            | BooksCommand::Audit {
                from: Some(f),
                to: Some(t),
                ..
            } => {
                input::span(*f, *t)?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn cost_version_id(raw: &str) -> Result<crate::domain::Id, ValidationError> {
    crate::domain::Id::parse_str(raw.trim()).map_err(|_| {
        ValidationError::new(
            "id",
            raw.escape_default(),
            "must be a tariff version id (24 hex digits) as `autovolt tariff history` shows it",
        )
    })
}

/// A price may start at most [`input::MAX_TARIFF_LEAD_DAYS`] ahead (plus `slack`).
fn check_lead(at: Instant, raw: &str, slack: chrono::Duration) -> Result<(), ValidationError> {
    let latest = crate::domain::dates::now_millis()
        + chrono::Duration::days(input::MAX_TARIFF_LEAD_DAYS)
        + slack;
    if at > latest {
        return Err(ValidationError::new(
            "from",
            raw,
            format!(
                "is more than {} days ahead; a price starts at most a year from now",
                input::MAX_TARIFF_LEAD_DAYS
            ),
        ));
    }
    Ok(())
}

pub async fn run(command: BooksCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let tz = ctx.tz()?;
    let today = crate::domain::interval::local_date(crate::domain::dates::now_millis(), tz);
    // Everything a person typed is checked before the database is opened.
    let plan = match command {
        BooksCommand::Aggregate {
            date,
            from,
            to,
            yesterday,
            month,
            break_lock,
            yes,
        } => {
            let (from, to) = period(date, from.zip(to), yesterday, month, today)?;
            if to > today {
                return Err(ValidationError::new(
                    "to",
                    to,
                    format!(
                        "is after today ({today}); only days that have begun can be aggregated"
                    ),
                )
                .into());
            }
            let days = input::span(from, to)?;
            let by = ctx.actor()?;
            if days > input::CONFIRM_SPAN_DAYS {
                confirm(
                    &format!("aggregate {days} days, {from} to {to} (each day reads the ledger)"),
                    yes,
                )?;
            }
            Plan::Aggregate {
                from,
                to,
                break_lock,
                by,
            }
        }
        BooksCommand::Audit { date, from, to } => {
            let (from, to) = if date.is_none() && from.is_none() {
                period(
                    None,
                    None,
                    false,
                    Some(today.with_day0(0).unwrap_or(today)),
                    today,
                )?
            } else {
                period(date, from.zip(to), false, None, today)?
            };
            input::span(from, to)?;
            Plan::Audit { from, to }
        }
        BooksCommand::Tariff { command } => Plan::Tariff(command),
    };
    let store = ctx.open().await?;
    let result = match plan {
        Plan::Tariff(command) => tariff(ctx, &store, command, tz).await,
        Plan::Aggregate {
            from,
            to,
            break_lock,
            by,
        } => aggregate(ctx, &store, from, to, tz, break_lock, by).await,
        Plan::Audit { from, to } => audit(ctx, &store, from, to, tz).await,
    };
    store.close().await;
    result
}

/// A command, checked.
enum Plan {
    Tariff(TariffCommand),
    Aggregate {
        from: NaiveDate,
        to: NaiveDate,
        break_lock: bool,
        by: Actor,
    },
    Audit {
        from: NaiveDate,
        to: NaiveDate,
    },
}

use chrono::Datelike;

fn version_json(v: &CostVersion) -> serde_json::Value {
    json!({
        "id": v.id.map(|i| i.to_hex()),
        "scope": TariffTarget::of(v).map(|t| t.to_string()).unwrap_or_else(|| v.scope.to_string()),
        "cost_per_kwh": v.cost_per_kwh,
        "effective_from": v.effective_from.to_rfc3339(),
        "effective_until": v.effective_until.map(|t| t.to_rfc3339()),
        "by": v.created_by.as_ref().map(|c| c.username.clone()),
        "note": v.notes,
    })
}

async fn tariff(ctx: &Ctx, store: &Store, command: TariffCommand, tz: Tz) -> Result<i32, Failure> {
    match command {
        TariffCommand::Set {
            price,
            scope,
            from,
            note,
        } => {
            let (target, _) = store.tariff_target(&parse_scope(&scope)?).await?;
            let from = match from {
                Some(f) => {
                    let at = start(&f, tz)?;
                    if let Some(at) = at {
                        check_lead(at, &f, chrono::Duration::zero())?;
                    }
                    at
                }
                None => None,
            };
            let version = store
                .set_tariff(&TariffChange {
                    price,
                    target,
                    from,
                    note,
                    by: ctx.actor()?,
                })
                .await?;
            ctx.show(version_json(&version), || {
                format!("set {}", describe(&version, tz))
            });
            Ok(OK)
        }
        TariffCommand::Cancel { id } => {
            let id = cost_version_id(&id)?;
            let cancelled = store.cancel_tariff(id, &ctx.actor()?).await?;
            ctx.show(version_json(&cancelled), || {
                format!("cancelled {}", describe(&cancelled, tz))
            });
            Ok(OK)
        }
        TariffCommand::Show => {
            let settings = store.active_power_settings().await?;
            let now = crate::domain::dates::now_millis();
            let mut current: Vec<CostVersion> = store
                .cost_versions(None)
                .await?
                .into_iter()
                .filter(|v| v.in_force_at(now))
                .collect();
            current.sort_by_key(|v| TariffTarget::of(v).map(|t| t.to_string()));
            ctx.show(
                json!({
                    "power_settings": settings.as_ref().map(|s| json!({"version": s.version, "electricity_price": s.electricity_price})),
                    "in_force": current.iter().map(version_json).collect::<Vec<_>>(),
                }),
                || {
                    let mut lines = vec![match &settings {
                        Some(s) => format!(
                            "power settings  v{}  ₹{:.2}/kWh  (used where no tariff is in force)",
                            s.version, s.electricity_price
                        ),
                        None => "power settings  none saved".into(),
                    }];
                    if current.is_empty() {
                        lines.push("no tariff in force now".into());
                    }
                    lines.extend(current.iter().map(|v| describe(v, tz)));
                    lines.join("\n")
                },
            );
            Ok(OK)
        }
        TariffCommand::History { scope } => {
            let target = match scope.as_deref().map(parse_scope).transpose()? {
                Some(t) => Some(store.tariff_target(&t).await?.0),
                None => None,
            };
            let history = store.cost_versions(target.as_ref()).await?;
            ctx.show(
                json!(history.iter().map(version_json).collect::<Vec<_>>()),
                || {
                    if history.is_empty() {
                        return "no tariff set yet".into();
                    }
                    history
                        .iter()
                        .map(|v| {
                            let until = v
                                .effective_until
                                .map(|u| format!("until {}", local(u, tz)))
                                .unwrap_or_else(|| "current".into());
                            let id = v.id.map(|i| i.to_hex()).unwrap_or_default();
                            format!("{id}  {}  {until}", describe(v, tz))
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
            Ok(OK)
        }
    }
}

/// A run slower than this says why.
const SLOW_SECS: f64 = 5.0;

async fn aggregate(
    ctx: &Ctx,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    break_locks: bool,
    by: Actor,
) -> Result<i32, Failure> {
    let request = AggregationRequest {
        from,
        to,
        tz,
        triggered_by: TriggeredBy::User,
        by: Some(by),
        break_locks,
    };
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the current classroom…");
            on_ctrl_c.cancel();
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AggregationProgress>();
    // One line redrawn in place on a terminal; one line per step in a log.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let printer = tokio::spawn(async move {
        let mut any = false;
        while let Some(p) = rx.recv().await {
            let line = format!("[{:>4}/{:<4}] {} {}", p.done, p.total, p.date, p.classroom);
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            any = true;
        }
        if terminal && any {
            eprintln!();
        }
    });
    let started = std::time::Instant::now();
    let result = store.aggregate(&request, Some(tx), &cancel).await;
    let _ = printer.await;
    let s = result?;
    let took = started.elapsed().as_secs_f64();
    let slow = if took > SLOW_SECS && store.server().kind == crate::store::ServerKind::FerretDb {
        let ledger = store.ledger_rows_estimate().await.unwrap_or(0);
        Some(format!(
            "{} reads the whole ledger ({ledger} rows) for a date range; MongoDB answers it from the start_ts index",
            store.server()
        ))
    } else {
        None
    };
    ctx.show(
        json!({
            "from": from.to_string(), "to": to.to_string(), "days": s.days, "took_secs": took,
            "ledger_rows": s.ledger_rows,
            "daily": {"written": s.daily_written, "unchanged": s.daily_unchanged, "removed": s.daily_removed},
            "monthly": {"written": s.monthly_written, "unchanged": s.monthly_unchanged, "removed": s.monthly_removed},
            "cancelled": s.cancelled, "slow_because": slow,
        }),
        || {
            let mut text = format!(
                "{} day(s) from {from} to {to} in {took:.1} s: {} ledger rows; daily {} written, {} unchanged, {} removed; monthly {} written, {} unchanged, {} removed{}",
                s.days,
                s.ledger_rows,
                s.daily_written,
                s.daily_unchanged,
                s.daily_removed,
                s.monthly_written,
                s.monthly_unchanged,
                s.monthly_removed,
                if s.cancelled { " (cancelled: later days not done)" } else { "" }
            );
            if let Some(why) = &slow {
                text.push_str(&format!("\n  slow because {why}"));
            }
            text
        },
    );
    Ok(if s.cancelled { FOUND } else { OK })
}

async fn audit(
    ctx: &Ctx,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<i32, Failure> {
    let report = store.audit(from, to, tz).await?;
    ctx.show(serde_json::to_value(&report).unwrap_or_default(), || {
        let mut lines = vec![format!(
            "audit {} … {} ({}): {} ledger rows, {} daily and {} monthly aggregates, {} day books, {} switches checked",
            report.from,
            report.to,
            report.timezone,
            report.rows_checked,
            report.daily_checked,
            report.monthly_checked,
            report.books_checked,
            report.switches_checked
        )];
        for f in &report.findings {
            lines.push(format!("  ✗ {f}"));
        }
        if !report.days_not_aggregated.is_empty() {
            lines.push(format!(
                "  · not aggregated yet: {}",
                report.days_not_aggregated.join(", ")
            ));
        }
        if report.is_clean() {
            lines.push("✓ everything agrees".into());
        } else {
            lines.push(format!("✗ {} finding(s)", report.findings.len()));
        }
        lines.join("\n")
    });
    Ok(if report.is_clean() { OK } else { FOUND })
}

/// The days an `aggregate` command covers, inclusive. A month stops at `today`.
pub fn period(
    date: Option<NaiveDate>,
    range: Option<(NaiveDate, NaiveDate)>,
    yesterday: bool,
    month: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ValidationError> {
    if let Some(d) = date {
        return Ok((d, d));
    }
    if let Some((from, to)) = range {
        if to < from {
            return Err(ValidationError::new(
                "to",
                to,
                format!("must not be before --from {from}"),
            ));
        }
        return Ok((from, to));
    }
    if yesterday {
        let y = today.pred_opt().unwrap_or(today);
        return Ok((y, y));
    }
    if let Some(first) = month {
        let m = first.format("%Y-%m");
        if first > today {
            return Err(ValidationError::new("month", m, "is in the future"));
        }
        let last = first
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(first);
        return Ok((first, last.min(today)));
    }
    Err(ValidationError::new(
        "period",
        "",
        "give one of --date, --from/--to, --yesterday, --month",
    ))
}

fn describe(v: &CostVersion, tz: Tz) -> String {
    let scope = TariffTarget::of(v)
        .map(|t| t.to_string())
        .unwrap_or_else(|| v.scope.to_string());
    let by = v
        .created_by
        .as_ref()
        .map(|c| format!("  by {}", c.username))
        .unwrap_or_default();
    let note = v
        .notes
        .as_ref()
        .map(|n| format!("  \"{n}\""))
        .unwrap_or_default();
    format!(
        "{scope:<20} ₹{:.2}/kWh  from {}{by}{note}",
        v.cost_per_kwh,
        local(v.effective_from, tz)
    )
}

/// `global`, `classroom:NAME` or `device:MAC|ID`.
pub fn parse_scope(raw: &str) -> Result<TariffTarget, ValidationError> {
    let raw = &input::printable("scope", raw, 120)?;
    let bad = || {
        ValidationError::new(
            "scope",
            raw,
            "must be global, classroom:NAME or device:MAC|NAME|ID",
        )
    };
    match raw.split_once(':') {
        None if raw.trim() == "global" => Ok(TariffTarget::Global),
        Some(("classroom", name)) if !name.trim().is_empty() => {
            Ok(TariffTarget::Classroom(name.trim().to_string()))
        }
        Some(("device", key)) if !key.trim().is_empty() => {
            Ok(TariffTarget::Device(key.trim().to_string()))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let today = d(2026, 11, 24);
        assert_eq!(
            period(Some(d(2026, 11, 2)), None, false, None, today).unwrap(),
            (d(2026, 11, 2), d(2026, 11, 2))
        );
        assert_eq!(
            period(None, None, true, None, today).unwrap(),
            (d(2026, 11, 23), d(2026, 11, 23))
        );
        assert_eq!(
            period(None, None, false, Some(d(2026, 11, 1)), today).unwrap(),
            (d(2026, 11, 1), today)
        );
        assert_eq!(
            period(None, None, false, Some(d(2026, 2, 1)), today).unwrap(),
            (d(2026, 2, 1), d(2026, 2, 28))
        );
        assert!(period(None, None, false, Some(d(2026, 12, 1)), today).is_err());
        assert_eq!(
            period(
                None,
                Some((d(2026, 11, 5), d(2026, 11, 4))),
                false,
                None,
                today
            )
            .unwrap_err()
            .field,
            "to"
        );
        assert!(period(None, None, false, None, today).is_err());
    }

    #[test]
    fn scopes() {
        assert_eq!(parse_scope("global").unwrap(), TariffTarget::Global);
        assert_eq!(
            parse_scope("classroom:CS-101").unwrap(),
            TariffTarget::Classroom("CS-101".into())
        );
        assert_eq!(
            parse_scope("device:A4:CF:12:B3:C4:D5").unwrap(),
            TariffTarget::Device("A4:CF:12:B3:C4:D5".into())
        );
        for bad in ["", "classroom:", "device: ", "room:CS", "everything"] {
            assert_eq!(parse_scope(bad).unwrap_err().field, "scope", "{bad}");
        }
    }
}
