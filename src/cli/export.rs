//! The books as files: `export` writes the daily rows of a range (CSV a spreadsheet opens as is,
//! or JSON), streamed from the daily rollups; `report` prints one month on one page (Markdown, or
//! a self-contained HTML page with the same charts).

use super::exit::{Failure, OK};
use super::{input, Ctx};
use crate::domain::dates::campus_time as local;
use crate::domain::rollup::{energy_weighted_rate, quality_score};
use crate::domain::totals::Amount;
use crate::domain::trends::{days_in, month_end, top_n, DailyBook};
use crate::domain::waste::WasteRule;
use crate::domain::{CostVersion, DailyAggregate};
use crate::store::Store;
use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Write the daily rows of a range of days (date, classroom, device, switch, kWh, on-time, ₹,
    /// rate used, quality) from the daily rollups: CSV (UTF-8, ISO dates, `.` decimals, ₹ as a
    /// number) or JSON, to stdout or --out. Days not aggregated yet have no rows.
    Export {
        /// First day, YYYY-MM-DD (campus-local).
        #[arg(long, value_parser = input::day)]
        from: NaiveDate,
        /// Last day, inclusive.
        #[arg(long, value_parser = input::day)]
        to: NaiveDate,
        /// One row per classroom and day, per device and day, or per switch and day.
        #[arg(long, value_enum, default_value_t = By::Device)]
        by: By,
        /// csv (default) or json (also with --json when writing to stdout).
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
        /// Write here (complete or not at all) rather than to stdout; the totals are then
        /// printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One month on one page: campus totals, daily ₹, top rooms, waste (outside campus hours),
    /// tariff changes and data quality. Markdown, or a self-contained HTML page.
    Report {
        /// The month, YYYY-MM.
        #[arg(long, value_parser = input::month)]
        month: NaiveDate,
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// Write here rather than to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    Classroom,
    Device,
    Switch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Html,
}

impl ExportCommand {
    /// What can be checked before connecting: the range.
    pub fn check(&self) -> Result<(), Failure> {
        if let ExportCommand::Export { from, to, .. } = self {
            input::span(*from, *to)?;
        }
        Ok(())
    }
}

pub async fn run(command: ExportCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let tz = ctx.tz()?;
    match command {
        ExportCommand::Export {
            from,
            to,
            by,
            format,
            out,
        } => {
            input::span(from, to)?;
            let format = format.unwrap_or(if ctx.json && out.is_none() {
                ExportFormat::Json
            } else {
                ExportFormat::Csv
            });
            let store = ctx.open().await?;
            let result = export(ctx, &store, from, to, by, format, out.as_deref()).await;
            store.close().await;
            result
        }
        ExportCommand::Report { month, format, out } => {
            let rule = WasteRule::new(
                ctx.config.waste_no_motion_minutes,
                &ctx.config.campus_hours,
                &ctx.config.campus_days,
                tz,
            )
            .map_err(Failure::unusable)?;
            let store = ctx.open().await?;
            let result = report(ctx, &store, month, tz, &rule, format, out.as_deref()).await;
            store.close().await;
            result
        }
    }
}

/// The columns of every export, in order.
pub const COLUMNS: [&str; 11] = [
    "date",
    "classroom",
    "device",
    "device_id",
    "switch",
    "switch_id",
    "kwh",
    "on_time_hours",
    "cost_inr",
    "rate_inr_per_kwh",
    "quality_pct",
];

/// One exported row; the device and switch columns are empty where the row sums more.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportRow {
    pub date: String,
    pub classroom: String,
    pub device: String,
    pub device_id: String,
    pub switch: String,
    pub switch_id: String,
    pub kwh: f64,
    pub on_time_sec: f64,
    pub cost: f64,
    /// Energy-weighted ₹/kWh.
    pub rate: f64,
    pub quality: f64,
}

impl ExportRow {
    fn of_device(a: &DailyAggregate) -> ExportRow {
        ExportRow {
            date: a.date_string.clone(),
            classroom: a.classroom.clone(),
            device: a.esp32_name.clone(),
            device_id: a.device_id.clone(),
            kwh: a.total_kwh,
            on_time_sec: a.on_time_sec,
            cost: a.cost_at_calc_time,
            rate: a.cost_per_kwh_used,
            quality: a.quality_score,
            ..ExportRow::default()
        }
    }

    /// One row per switch of the device's day (its quality is the device's).
    fn of_switches(a: &DailyAggregate) -> Vec<ExportRow> {
        a.switch_breakdown
            .iter()
            .map(|s| ExportRow {
                switch: s.switch_name.clone(),
                switch_id: s.switch_id.clone(),
                kwh: s.energy_kwh,
                on_time_sec: s.on_time_sec,
                cost: s.cost,
                rate: energy_weighted_rate(s.cost, s.energy_kwh),
                ..ExportRow::of_device(a)
            })
            .collect()
    }

    fn values(&self) -> [String; 11] {
        [
            self.date.clone(),
            self.classroom.clone(),
            self.device.clone(),
            self.device_id.clone(),
            self.switch.clone(),
            self.switch_id.clone(),
            format!("{:.6}", self.kwh),
            format!("{:.4}", self.on_time_sec / 3600.0),
            format!("{:.4}", self.cost),
            format!("{:.4}", self.rate),
            format!("{:.1}", self.quality),
        ]
    }

    /// A CSV line (RFC 4180 quoting). Text a spreadsheet would run as a formula (`=`, `+`, `-`,
    /// `@` first) is prefixed with `'`, so that opening a file never runs what a name holds.
    pub fn csv(&self) -> String {
        let v = self.values();
        v.iter()
            .enumerate()
            .map(|(i, f)| if i < 6 { csv_text(f) } else { f.clone() })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "date": self.date, "classroom": self.classroom, "device": self.device,
            "device_id": self.device_id, "switch": self.switch, "switch_id": self.switch_id,
            "kwh": self.kwh, "on_time_hours": self.on_time_sec / 3600.0, "cost_inr": self.cost,
            "rate_inr_per_kwh": self.rate, "quality_pct": self.quality,
        })
    }
}

pub fn csv_text(raw: &str) -> String {
    let guarded = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Sums the device rows of one classroom's day into one row (energy-weighted rate and quality).
#[derive(Debug, Default)]
pub struct ClassroomDayRow {
    row: Option<ExportRow>,
    quality_wh: f64,
}

impl ClassroomDayRow {
    /// Adds a device's day; returns the finished row of the classroom-day before it, if the key
    /// changed (the rows come sorted by date, then classroom).
    pub fn push(&mut self, a: &DailyAggregate) -> Option<ExportRow> {
        let done = match &self.row {
            Some(r) if r.date != a.date_string || r.classroom != a.classroom => self.finish(),
            _ => None,
        };
        let r = self.row.get_or_insert_with(|| ExportRow {
            date: a.date_string.clone(),
            classroom: a.classroom.clone(),
            ..ExportRow::default()
        });
        r.kwh += a.total_kwh;
        r.on_time_sec += a.on_time_sec;
        r.cost += a.cost_at_calc_time;
        self.quality_wh += a.quality_score / 100.0 * a.total_kwh;
        done
    }

    pub fn finish(&mut self) -> Option<ExportRow> {
        let mut r = self.row.take()?;
        r.rate = energy_weighted_rate(r.cost, r.kwh);
        r.quality = quality_score(self.quality_wh, r.kwh);
        self.quality_wh = 0.0;
        Some(r)
    }
}

/// Writes rows as they come: CSV with a header line (and a byte-order mark, by which spreadsheets
/// know the file is UTF-8), or a JSON array.
struct Sink<W: Write> {
    out: W,
    format: ExportFormat,
    rows: u64,
    total: Amount,
}

impl<W: Write> Sink<W> {
    fn start(mut out: W, format: ExportFormat) -> std::io::Result<Sink<W>> {
        match format {
            ExportFormat::Csv => writeln!(out, "\u{feff}{}", COLUMNS.join(","))?,
            ExportFormat::Json => writeln!(out, "[")?,
        }
        Ok(Sink {
            out,
            format,
            rows: 0,
            total: Amount::default(),
        })
    }

    fn row(&mut self, r: &ExportRow) -> std::io::Result<()> {
        match self.format {
            ExportFormat::Csv => writeln!(self.out, "{}", r.csv())?,
            ExportFormat::Json => {
                if self.rows > 0 {
                    writeln!(self.out, ",")?;
                }
                serde_json::to_writer(&mut self.out, &r.json())?;
            }
        }
        self.rows += 1;
        self.total.add(Amount {
            kwh: r.kwh,
            cost: r.cost,
        });
        Ok(())
    }

    fn end(mut self) -> std::io::Result<(u64, Amount)> {
        if self.format == ExportFormat::Json {
            if self.rows > 0 {
                writeln!(self.out)?;
            }
            writeln!(self.out, "]")?;
        }
        self.out.flush()?;
        Ok((self.rows, self.total))
    }
}

/// Why writing failed, as a user reads it.
fn write_failure(e: std::io::Error, out: Option<&Path>) -> Failure {
    match out {
        Some(p) => Failure::unusable(format!(
            "cannot write {}: {e}; nothing was written there",
            p.display()
        )),
        None => Failure::unusable(format!("cannot write to stdout: {e}")),
    }
}

/// Where a file is written until it is complete (then renamed over `out`).
fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

/// Streams the rows of `from..=to`; returns how many and their sums.
pub async fn write_export<W: Write>(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    by: By,
    format: ExportFormat,
    out: W,
) -> Result<(u64, Amount), Failure> {
    let io = |e: std::io::Error| write_failure(e, None);
    let mut sink = Sink::start(out, format).map_err(io)?;
    let mut classroom_day = ClassroomDayRow::default();
    store
        .each_daily_aggregate(from, to, None, |a| -> Result<(), Failure> {
            match by {
                By::Device => sink.row(&ExportRow::of_device(&a)).map_err(io)?,
                By::Switch => {
                    for r in ExportRow::of_switches(&a) {
                        sink.row(&r).map_err(io)?;
                    }
                }
                By::Classroom => {
                    if let Some(r) = classroom_day.push(&a) {
                        sink.row(&r).map_err(io)?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    if let Some(r) = classroom_day.finish() {
        sink.row(&r).map_err(io)?;
    }
    sink.end().map_err(io)
}

async fn export(
    ctx: &Ctx,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    by: By,
    format: ExportFormat,
    out: Option<&Path>,
) -> Result<i32, Failure> {
    let Some(path) = out else {
        let stdout = std::io::stdout();
        let lock = std::io::BufWriter::new(stdout.lock());
        write_export(store, from, to, by, format, lock).await?;
        return Ok(OK);
    };
    let part = partial(path);
    let file = std::fs::File::create(&part).map_err(|e| write_failure(e, Some(path)))?;
    let written = write_export(store, from, to, by, format, std::io::BufWriter::new(file)).await;
    let (rows, total) = match written {
        Ok(w) => w,
        Err(mut f) => {
            let _ = std::fs::remove_file(&part);
            f.message = format!("{}; nothing was written to {}", f.message, path.display());
            return Err(f);
        }
    };
    std::fs::rename(&part, path).map_err(|e| write_failure(e, Some(path)))?;
    ctx.show(
        json!({"out": path.display().to_string(), "from": from.to_string(), "to": to.to_string(),
               "rows": rows, "kwh": total.kwh, "cost_inr": total.cost}),
        || {
            format!(
                "{rows} row(s), {from} to {to}: {:.3} kWh, ₹{:.2} written to {}",
                total.kwh,
                total.cost,
                path.display()
            )
        },
    );
    Ok(OK)
}

/// A month's report, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthReport {
    pub campus: String,
    pub month: NaiveDate,
    pub tz: Tz,
    pub days: Vec<(NaiveDate, Amount)>,
    /// Days of the month up to yesterday with no rollup.
    pub not_aggregated: Vec<NaiveDate>,
    pub total: Amount,
    pub top: Vec<(String, Amount)>,
    /// Outside campus hours, per classroom, most first.
    pub waste: Vec<(String, Amount)>,
    pub hours: String,
    pub tariffs: Vec<CostVersion>,
    /// Energy-weighted share of high-confidence energy, 0–100.
    pub quality: f64,
    pub rollups: u64,
}

#[allow(clippy::too_many_arguments)]
async fn report(
    ctx: &Ctx,
    store: &Store,
    month: NaiveDate,
    tz: Tz,
    rule: &WasteRule,
    format: ReportFormat,
    out: Option<&Path>,
) -> Result<i32, Failure> {
    let last = month_end(month);
    let today = crate::domain::interval::local_date(crate::domain::dates::now_millis(), tz);
    let mut book = DailyBook::default();
    let (mut quality_wh, mut rollups) = (0.0, 0u64);
    store
        .each_daily_aggregate(month, last, None, |a| -> Result<(), Failure> {
            if let Ok(d) = NaiveDate::parse_from_str(&a.date_string, "%Y-%m-%d") {
                book.add(
                    d,
                    &a.classroom,
                    Amount {
                        kwh: a.total_kwh,
                        cost: a.cost_at_calc_time,
                    },
                );
                quality_wh += a.quality_score / 100.0 * a.total_kwh;
                rollups += 1;
            }
            Ok(())
        })
        .await?;
    let waste = crate::tui::trends::ledger_figures(store, month, last.min(today), tz, rule)
        .await?
        .waste;
    let tariffs: Vec<CostVersion> = store
        .cost_versions(None)
        .await?
        .into_iter()
        .filter(|v| {
            let d = crate::domain::interval::local_date(v.effective_from, tz);
            d >= month && d <= last
        })
        .collect();
    let series = book.series(month, last, None);
    let total = crate::domain::trends::sum(&series);
    let r = MonthReport {
        campus: ctx.config.campus.clone(),
        month,
        tz,
        days: month.iter_days().zip(series).collect(),
        not_aggregated: month
            .iter_days()
            .take(days_in(month, last))
            .filter(|d| *d < today && !book.is_covered(*d))
            .collect(),
        total,
        top: top_n(
            book.by_classroom(month, last)
                .into_iter()
                .map(|(n, a)| (n, a.cost)),
            10,
        )
        .into_iter()
        .map(|(n, _)| {
            let a = book.total(month, last, Some(&n));
            (n, a)
        })
        .collect(),
        waste: top_n(waste.iter().map(|(n, a)| (n.clone(), a.cost)), 10)
            .into_iter()
            .filter(|(_, c)| *c > 0.0)
            .map(|(n, _)| {
                let a = waste.get(&n).copied().unwrap_or_default();
                (n, a)
            })
            .collect(),
        hours: ctx.config.campus_hours.clone(),
        tariffs,
        quality: quality_score(quality_wh, total.kwh),
        rollups,
    };
    let text = if ctx.json {
        serde_json::to_string_pretty(&report_json(&r)).unwrap_or_default()
    } else {
        match format {
            ReportFormat::Markdown => markdown(&r),
            ReportFormat::Html => html(&r),
        }
    };
    match out {
        None => super::say(&text),
        Some(p) => {
            let part = partial(p);
            std::fs::write(&part, text.as_bytes())
                .and_then(|_| std::fs::rename(&part, p))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&part);
                    write_failure(e, Some(p))
                })?;
        }
    }
    Ok(OK)
}

fn room(n: &str) -> &str {
    if n.is_empty() {
        crate::tui::model::UNASSIGNED
    } else {
        n
    }
}

fn tariff_line(v: &CostVersion, tz: Tz) -> String {
    let scope = crate::domain::tariff::TariffTarget::of(v)
        .map(|t| t.to_string())
        .unwrap_or_else(|| v.scope.to_string());
    let by = v
        .created_by
        .as_ref()
        .map(|c| format!(" by {}", c.username))
        .unwrap_or_default();
    let note = v
        .notes
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "{}: ₹{:.2}/kWh, {scope}{by}{note}",
        local(v.effective_from, tz),
        v.cost_per_kwh
    )
}

pub fn report_json(r: &MonthReport) -> serde_json::Value {
    json!({
        "campus": r.campus,
        "month": r.month.format("%Y-%m").to_string(),
        "timezone": r.tz.name(),
        "total": {"kwh": r.total.kwh, "cost_inr": r.total.cost},
        "days": r.days.iter().map(|(d, a)| json!({"date": d.to_string(), "kwh": a.kwh, "cost_inr": a.cost})).collect::<Vec<_>>(),
        "not_aggregated": r.not_aggregated.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "top_rooms": r.top.iter().map(|(n, a)| json!({"classroom": n, "kwh": a.kwh, "cost_inr": a.cost})).collect::<Vec<_>>(),
        "waste_outside_hours": r.waste.iter().map(|(n, a)| json!({"classroom": n, "kwh": a.kwh, "cost_inr": a.cost})).collect::<Vec<_>>(),
        "campus_hours": r.hours,
        "tariff_changes": r.tariffs.iter().map(|v| json!({"from": v.effective_from.to_rfc3339(), "cost_per_kwh": v.cost_per_kwh, "scope": v.scope.to_string(), "note": v.notes})).collect::<Vec<_>>(),
        "quality_pct": r.quality,
        "rollups": r.rollups,
    })
}

/// A bar of `width` cells for `v` of `max`, in eighths.
fn text_bar(v: f64, max: f64, width: usize) -> String {
    const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    if max <= 0.0 || v <= 0.0 {
        return String::new();
    }
    let eighths = (v / max * (width * 8) as f64).round() as usize;
    let mut s: String = std::iter::repeat_n('█', eighths / 8).collect();
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8 - 1]);
    }
    s
}

fn money(v: f64) -> String {
    crate::format::money(v)
}

pub fn markdown(r: &MonthReport) -> String {
    let mut o = String::new();
    let month = r.month.format("%B %Y");
    o.push_str(&format!("# {} · energy report · {month}\n\n", r.campus));
    o.push_str(&format!(
        "Campus time ({}). From the daily rollups ({} read); days not aggregated yet are listed under data quality.\n\n",
        r.tz.name(),
        r.rollups
    ));
    o.push_str("## Campus\n\n| | kWh | ₹ |\n|---|---:|---:|\n");
    o.push_str(&format!(
        "| Month | {:.2} | {} |\n",
        r.total.kwh,
        money(r.total.cost)
    ));
    let used: Vec<&(NaiveDate, Amount)> = r.days.iter().filter(|(_, a)| a.kwh > 0.0).collect();
    if !used.is_empty() {
        let avg = r.total.cost / used.len() as f64;
        o.push_str(&format!(
            "| Average day (of {} with use) | {:.2} | {} |\n",
            used.len(),
            r.total.kwh / used.len() as f64,
            money(avg)
        ));
        if let Some((d, a)) = used.iter().max_by(|a, b| a.1.cost.total_cmp(&b.1.cost)) {
            o.push_str(&format!(
                "| Highest day ({}) | {:.2} | {} |\n",
                d.format("%-d %b"),
                a.kwh,
                money(a.cost)
            ));
        }
    }
    o.push_str("\n## Daily ₹\n\n```text\n");
    let max = r.days.iter().map(|(_, a)| a.cost).fold(0.0, f64::max);
    for (d, a) in &r.days {
        let mark = if r.not_aggregated.contains(d) {
            "  (not aggregated)"
        } else {
            ""
        };
        o.push_str(&format!(
            "{} {:<40} {:>12}{mark}\n",
            d.format("%d %a"),
            text_bar(a.cost, max, 40),
            money(a.cost)
        ));
    }
    o.push_str(
        "```\n\n## Top rooms\n\n| # | Room | kWh | ₹ | share |\n|---:|---|---:|---:|---:|\n",
    );
    for (i, (n, a)) in r.top.iter().enumerate() {
        let share = if r.total.cost > 0.0 {
            a.cost / r.total.cost * 100.0
        } else {
            0.0
        };
        o.push_str(&format!(
            "| {} | {} | {:.2} | {} | {share:.1} % |\n",
            i + 1,
            md_text(room(n)),
            a.kwh,
            money(a.cost)
        ));
    }
    o.push_str(&format!(
        "\n## Waste: used outside campus hours ({})\n\n",
        r.hours
    ));
    if r.waste.is_empty() {
        o.push_str("Nothing was used outside campus hours.\n");
    } else {
        let total: f64 = r.waste.iter().map(|(_, a)| a.cost).sum();
        o.push_str(&format!(
            "₹{} in the rooms below (from the ledger, in 15-minute slots).\n\n| Room | kWh | ₹ |\n|---|---:|---:|\n",
            money(total)
        ));
        for (n, a) in &r.waste {
            o.push_str(&format!(
                "| {} | {:.2} | {} |\n",
                md_text(room(n)),
                a.kwh,
                money(a.cost)
            ));
        }
    }
    o.push_str("\n## Tariff changes\n\n");
    if r.tariffs.is_empty() {
        o.push_str("None this month.\n");
    }
    for v in &r.tariffs {
        o.push_str(&format!("- {}\n", md_text(&tariff_line(v, r.tz))));
    }
    o.push_str(&format!(
        "\n## Data quality\n\n- Energy from high-confidence readings: {:.1} %\n- Daily rollups read: {}\n",
        r.quality, r.rollups
    ));
    if r.not_aggregated.is_empty() {
        o.push_str("- Every day up to yesterday is aggregated.\n");
    } else {
        let days: Vec<String> = r.not_aggregated.iter().map(|d| d.to_string()).collect();
        o.push_str(&format!(
            "- Not aggregated yet (run `autovolt aggregate`): {}\n",
            days.join(", ")
        ));
    }
    o
}

/// Text safe inside a Markdown table cell.
fn md_text(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The same report as one HTML page with no outside resources (the chart is inline SVG).
pub fn html(r: &MonthReport) -> String {
    let month = r.month.format("%B %Y").to_string();
    let max = r.days.iter().map(|(_, a)| a.cost).fold(0.0, f64::max);
    let (w, h, bw) = (28.0 * r.days.len() as f64, 160.0, 22.0);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {}\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"daily cost\">",
        h + 20.0,
        h + 20.0
    );
    for (i, (d, a)) in r.days.iter().enumerate() {
        let bh = if max > 0.0 { a.cost / max * h } else { 0.0 };
        let x = i as f64 * 28.0 + 3.0;
        let class = if r.not_aggregated.contains(d) {
            "missing"
        } else {
            "bar"
        };
        svg.push_str(&format!(
            "<rect class=\"{class}\" x=\"{x}\" y=\"{:.1}\" width=\"{bw}\" height=\"{bh:.1}\"><title>{} ₹{}</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text>",
            h - bh,
            d,
            money(a.cost),
            x + bw / 2.0,
            h + 14.0,
            d.format("%d")
        ));
    }
    svg.push_str("</svg>");
    let rows = |items: &[(String, Amount)]| -> String {
        items
            .iter()
            .enumerate()
            .map(|(i, (n, a))| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
                    i + 1,
                    esc(room(n)),
                    a.kwh,
                    money(a.cost)
                )
            })
            .collect()
    };
    let tariffs: String = if r.tariffs.is_empty() {
        "<li>None this month.</li>".into()
    } else {
        r.tariffs
            .iter()
            .map(|v| format!("<li>{}</li>", esc(&tariff_line(v, r.tz))))
            .collect()
    };
    let missing = if r.not_aggregated.is_empty() {
        "Every day up to yesterday is aggregated.".to_string()
    } else {
        format!(
            "Not aggregated yet (run <code>autovolt aggregate</code>): {}",
            r.not_aggregated
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{campus} · {month}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}}\
table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;border-bottom:1px solid #ddd}}.n{{text-align:right}}\
.bar{{fill:#2a7}}.missing{{fill:#ccc}}text{{font-size:9px;text-anchor:middle}}\
@media print{{body{{margin:0}}}}</style></head><body>\
<h1>{campus} · energy report · {month}</h1>\
<p>Campus time ({tz}). From the daily rollups ({rollups} read).</p>\
<h2>Campus</h2><table><tr><th></th><th>kWh</th><th>₹</th></tr><tr><td>Month</td><td class=\"n\">{kwh:.2}</td><td class=\"n\">{cost}</td></tr></table>\
<h2>Daily ₹</h2>{svg}\
<h2>Top rooms</h2><table><tr><th>#</th><th>Room</th><th>kWh</th><th>₹</th></tr>{top}</table>\
<h2>Waste: used outside campus hours ({hours})</h2><table><tr><th>#</th><th>Room</th><th>kWh</th><th>₹</th></tr>{waste}</table>\
<h2>Tariff changes</h2><ul>{tariffs}</ul>\
<h2>Data quality</h2><ul><li>Energy from high-confidence readings: {quality:.1} %</li><li>{missing}</li></ul>\
</body></html>\n",
        campus = esc(&r.campus),
        month = esc(&month),
        tz = esc(r.tz.name()),
        rollups = r.rollups,
        kwh = r.total.kwh,
        cost = money(r.total.cost),
        top = rows(&r.top),
        waste = rows(&r.waste),
        hours = esc(&r.hours),
        quality = r.quality,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(date: &str, room: &str, device: &str, kwh: f64, cost: f64, q: f64) -> DailyAggregate {
        DailyAggregate {
            id: None,
            date_string: date.into(),
            classroom: room.into(),
            device_id: device.into(),
            esp32_name: format!("{device}-board"),
            total_kwh: kwh,
            on_time_sec: 3600.0,
            cost_at_calc_time: cost,
            cost_per_kwh_used: energy_weighted_rate(cost, kwh),
            switch_count: 1,
            switch_breakdown: vec![],
            quality_score: q,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn classroom_rows_sum_the_devices_of_a_day() {
        let mut c = ClassroomDayRow::default();
        assert_eq!(
            c.push(&daily("2026-11-01", "CS", "a", 1.0, 7.0, 100.0)),
            None
        );
        assert_eq!(
            c.push(&daily("2026-11-01", "CS", "b", 3.0, 24.0, 50.0)),
            None
        );
        let first = c
            .push(&daily("2026-11-01", "EE", "c", 2.0, 15.0, 100.0))
            .unwrap();
        assert_eq!(
            (first.kwh, first.cost, first.on_time_sec),
            (4.0, 31.0, 7200.0)
        );
        assert_eq!(first.rate, 7.75);
        assert_eq!(first.quality, 62.5);
        let next = c
            .push(&daily("2026-11-02", "EE", "c", 1.0, 7.5, 100.0))
            .unwrap();
        assert_eq!((next.classroom.as_str(), next.cost), ("EE", 15.0));
        assert_eq!(c.finish().unwrap().date, "2026-11-02");
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn csv_quotes_and_disarms_text() {
        assert_eq!(csv_text("CS-101"), "CS-101");
        assert_eq!(csv_text("Lab, 2"), "\"Lab, 2\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_text("-1"), "'-1");
        let r = ExportRow::of_device(&daily("2026-11-01", "Sāl, 1", "d", 1.5, 11.25, 100.0));
        assert_eq!(
            r.csv(),
            "2026-11-01,\"Sāl, 1\",d-board,d,,,1.500000,1.0000,11.2500,7.5000,100.0"
        );
        assert_eq!(
            r.csv().split(',').count(),
            COLUMNS.len() + 1,
            "one comma is quoted"
        );
    }

    #[test]
    fn a_csv_export_has_its_header_and_a_json_one_is_an_array() {
        let mut buf = Vec::new();
        let mut s = Sink::start(&mut buf, ExportFormat::Csv).unwrap();
        s.row(&ExportRow::default()).unwrap();
        assert_eq!(s.end().unwrap().0, 1);
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("\u{feff}date,classroom,"), "{text}");
        assert_eq!(text.lines().count(), 2);
        for rows in [0, 1, 3] {
            let mut buf = Vec::new();
            let mut s = Sink::start(&mut buf, ExportFormat::Json).unwrap();
            for _ in 0..rows {
                s.row(&ExportRow::default()).unwrap();
            }
            s.end().unwrap();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v.as_array().unwrap().len(), rows);
        }
    }

    #[test]
    fn reports_escape_what_names_hold() {
        let r = MonthReport {
            campus: "Main <Campus>".into(),
            month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            tz: chrono_tz::Asia::Kolkata,
            days: vec![(
                NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                Amount {
                    kwh: 2.0,
                    cost: 15.0,
                },
            )],
            not_aggregated: vec![],
            total: Amount {
                kwh: 2.0,
                cost: 15.0,
            },
            top: vec![(
                "<script>|x".into(),
                Amount {
                    kwh: 2.0,
                    cost: 15.0,
                },
            )],
            waste: vec![],
            hours: "08:00-18:00".into(),
            tariffs: vec![],
            quality: 100.0,
            rollups: 1,
        };
        let h = html(&r);
        assert!(!h.contains("<script>") && h.contains("&lt;script&gt;"));
        assert!(h.contains("Main &lt;Campus&gt;"));
        let m = markdown(&r);
        assert!(m.contains("<script>\\|x"), "{m}");
        assert!(m.contains("| Month | 2.00 | 15.00 |"), "{m}");
        assert_eq!(report_json(&r)["total"]["cost_inr"], 15.0);
    }
}
