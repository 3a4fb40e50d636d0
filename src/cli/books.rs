//! Commands on the energy books: tariffs, aggregation, audit.

use crate::config::Config;
use crate::domain::tariff::{TariffChange, TariffTarget};
use crate::domain::{CostVersion, Instant, TriggeredBy, ValidationError};
use crate::store::aggregation::{AggregationProgress, AggregationRequest};
use crate::store::{Store, StoreError, DEFAULT_SELECTION_TIMEOUT};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use clap::Subcommand;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum BooksCommand {
    /// The electricity tariff: set a new price, show what is in force, list the history.
    Tariff {
        #[command(subcommand)]
        command: TariffCommand,
    },
    /// Build the daily and monthly rollups from the ledger (idempotent: a re-run changes nothing).
    #[command(group(clap::ArgGroup::new("period").required(true).args(["date", "from", "yesterday", "month"])))]
    Aggregate {
        /// One campus-local day, YYYY-MM-DD.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// First day of a range (with --to).
        #[arg(long, requires = "to")]
        from: Option<NaiveDate>,
        /// Last day of a range, inclusive.
        #[arg(long, requires = "from")]
        to: Option<NaiveDate>,
        /// Yesterday, campus time.
        #[arg(long)]
        yesterday: bool,
        /// A month, YYYY-MM (up to today).
        #[arg(long)]
        month: Option<String>,
        /// Remove the locks of these days first, after a run died holding them.
        #[arg(long)]
        break_lock: bool,
        /// Who runs it (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// Check the books: every ledger row against the energy and cost rules, rows crossing
    /// midnight, overlapping intervals, and every stored aggregate against its recomputation.
    /// Exit 0 when everything agrees, 1 when something does not, 2 when the database cannot be used.
    Audit {
        /// One campus-local day (default: this month so far).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        date: Option<NaiveDate>,
        /// First day of a range (with --to).
        #[arg(long, requires = "to")]
        from: Option<NaiveDate>,
        /// Last day of a range, inclusive.
        #[arg(long, requires = "from")]
        to: Option<NaiveDate>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TariffCommand {
    /// Start a new price (₹/kWh, more than 0 and at most 100). Past ledger rows keep their cost.
    Set {
        /// ₹/kWh.
        price: f64,
        /// `global`, `classroom:NAME` or `device:MAC` (a device id works too).
        #[arg(long, default_value = "global")]
        scope: String,
        /// When the price starts: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` (campus time) or RFC 3339;
        /// default now. Not before the start of the current price of the same scope.
        #[arg(long)]
        from: Option<String>,
        /// Why the price changed.
        #[arg(long)]
        note: Option<String>,
        /// Who makes the change (default: $USER, else $LOGNAME).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// The prices in force now, per scope, and the power settings' fallback price.
    Show,
    /// Every price ever set, newest first.
    History {
        /// Only this scope: `global`, `classroom:NAME` or `device:ID`.
        #[arg(long)]
        scope: Option<String>,
    },
}

pub async fn run(command: BooksCommand, config: &Config) -> i32 {
    super::init_stderr_logging();
    let tz = match config.tz() {
        Ok(tz) => tz,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return 2;
        }
    };
    let store = match Store::connect(&config.mongodb_uri, DEFAULT_SELECTION_TIMEOUT).await {
        Ok(s) => s.with_lock_lease(config.lock_lease()),
        Err(e) => {
            eprintln!("autovolt: {e}");
            return e.exit_code();
        }
    };
    let result = match command {
        BooksCommand::Tariff { command } => tariff(&store, command, tz).await,
        BooksCommand::Aggregate {
            date,
            from,
            to,
            yesterday,
            month,
            break_lock,
            operator,
        } => {
            let today = crate::domain::interval::local_date(crate::domain::dates::now_millis(), tz);
            match period(date, from.zip(to), yesterday, month.as_deref(), today) {
                Ok((from, to)) => aggregate(&store, from, to, tz, break_lock, operator).await,
                Err(e) => Err(e.into()),
            }
        }
        BooksCommand::Audit {
            date,
            from,
            to,
            json,
        } => {
            let today = crate::domain::interval::local_date(crate::domain::dates::now_millis(), tz);
            let month = today.format("%Y-%m").to_string();
            let range = if date.is_none() && from.is_none() {
                period(None, None, false, Some(&month), today)
            } else {
                period(date, from.zip(to), false, None, today)
            };
            let result = match range {
                Ok((from, to)) => audit(&store, from, to, tz, json).await,
                Err(e) => Err(e.into()),
            };
            // Whatever stops the audit means the books could not be checked.
            return match result {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    2
                }
            };
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}

async fn tariff(store: &Store, command: TariffCommand, tz: Tz) -> Result<i32, StoreError> {
    match command {
        TariffCommand::Set {
            price,
            scope,
            from,
            note,
            operator,
        } => {
            let target = parse_scope(&scope)?;
            let from = from.map(|f| parse_instant(&f, tz)).transpose()?;
            let operator = operator
                .or_else(|| std::env::var("USER").ok())
                .or_else(|| std::env::var("LOGNAME").ok())
                .unwrap_or_default();
            let version = store
                .set_tariff(&TariffChange {
                    price,
                    target,
                    from,
                    note,
                    operator,
                })
                .await?;
            println!("set {}", describe(&version, tz));
            Ok(0)
        }
        TariffCommand::Show => {
            match store.active_power_settings().await? {
                Some(s) => println!(
                    "power settings  v{}  ₹{:.2}/kWh  (used where no tariff is in force)",
                    s.version, s.electricity_price
                ),
                None => println!("power settings  none saved"),
            }
            let now = crate::domain::dates::now_millis();
            let mut current: Vec<CostVersion> = store
                .cost_versions(None)
                .await?
                .into_iter()
                .filter(|v| v.in_force_at(now))
                .collect();
            current.sort_by_key(|v| TariffTarget::of(v).map(|t| t.to_string()));
            if current.is_empty() {
                println!("no tariff in force now");
            }
            for v in &current {
                println!("{}", describe(v, tz));
            }
            Ok(0)
        }
        TariffCommand::History { scope } => {
            let target = scope.as_deref().map(parse_scope).transpose()?;
            let history = store.cost_versions(target.as_ref()).await?;
            if history.is_empty() {
                println!("no tariff set yet");
            }
            for v in &history {
                let until = v
                    .effective_until
                    .map(|u| format!("until {}", local(u, tz)))
                    .unwrap_or_else(|| "current".into());
                println!("{}  {until}", describe(v, tz));
            }
            Ok(0)
        }
    }
}

/// A run slower than this says why.
const SLOW_SECS: f64 = 5.0;

async fn aggregate(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    break_locks: bool,
    operator: Option<String>,
) -> Result<i32, StoreError> {
    let request = AggregationRequest {
        from,
        to,
        tz,
        triggered_by: TriggeredBy::User,
        operator: operator.or_else(|| std::env::var("USER").ok()),
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
    println!(
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
    if took > SLOW_SECS && store.server().kind == crate::store::ServerKind::FerretDb {
        let ledger = store
            .collection::<bson::Document>(crate::store::collections::LEDGER)
            .estimated_document_count()
            .await
            .unwrap_or(0);
        println!(
            "  slow because {} reads the whole ledger ({ledger} rows) for a date range; MongoDB answers it from the start_ts index",
            store.server()
        );
    }
    Ok(if s.cancelled { 1 } else { 0 })
}

async fn audit(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    json: bool,
) -> Result<i32, StoreError> {
    let report = store.audit(from, to, tz).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        );
    } else {
        println!(
            "audit {} … {} ({}): {} ledger rows, {} daily and {} monthly aggregates, {} switches checked",
            report.from,
            report.to,
            report.timezone,
            report.rows_checked,
            report.daily_checked,
            report.monthly_checked,
            report.switches_checked
        );
        for f in &report.findings {
            println!("  ✗ {f}");
        }
        if !report.days_not_aggregated.is_empty() {
            println!(
                "  · not aggregated yet: {}",
                report.days_not_aggregated.join(", ")
            );
        }
        if report.is_clean() {
            println!("✓ everything agrees");
        } else {
            println!("✗ {} finding(s)", report.findings.len());
        }
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}

/// The days an `aggregate` command covers, inclusive. A month stops at `today`.
pub fn period(
    date: Option<NaiveDate>,
    range: Option<(NaiveDate, NaiveDate)>,
    yesterday: bool,
    month: Option<&str>,
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
    if let Some(m) = month {
        let first = NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
            .map_err(|_| ValidationError::new("month", m, "must be YYYY-MM"))?;
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

fn local(t: Instant, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
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
    let bad = || ValidationError::new("scope", raw, "must be global, classroom:NAME or device:MAC");
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

/// An instant from the command line: RFC 3339, or a campus-local `YYYY-MM-DD[ HH:MM[:SS]]` (also
/// with `T`). A local time that does not exist (a DST gap) is refused; an ambiguous one is the first.
pub fn parse_instant(raw: &str, tz: Tz) -> Result<Instant, ValidationError> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| {
        ValidationError::new(
            "from",
            raw,
            "must be YYYY-MM-DD, YYYY-MM-DD HH:MM (campus time) or RFC 3339",
        )
    })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| {
            ValidationError::new(
                "from",
                raw,
                format!("does not exist in {tz} (a clock change)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    const IST: Tz = chrono_tz::Asia::Kolkata;

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
            period(None, None, false, Some("2026-11"), today).unwrap(),
            (d(2026, 11, 1), today)
        );
        assert_eq!(
            period(None, None, false, Some("2026-02"), today).unwrap(),
            (d(2026, 2, 1), d(2026, 2, 28))
        );
        assert!(period(None, None, false, Some("2026-12"), today).is_err());
        assert!(period(None, None, false, Some("2026-13"), today).is_err());
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

    #[test]
    fn instants_are_campus_local_unless_zoned() {
        let midnight = Utc.with_ymd_and_hms(2026, 11, 24, 18, 30, 0).unwrap();
        assert_eq!(parse_instant("2026-11-25", IST).unwrap(), midnight);
        assert_eq!(parse_instant("2026-11-25 00:00", IST).unwrap(), midnight);
        assert_eq!(parse_instant("2026-11-25T00:00:00", IST).unwrap(), midnight);
        assert_eq!(
            parse_instant("2026-11-24T18:30:00Z", IST).unwrap(),
            midnight
        );
        assert!(parse_instant("25/11/2026", IST).is_err());
        assert!(parse_instant("2026-02-30", IST).is_err());
        let ny: Tz = chrono_tz::America::New_York;
        assert!(parse_instant("2026-03-08 02:30", ny).is_err());
    }
}
