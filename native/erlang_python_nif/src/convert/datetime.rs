//! Dates and times, both ways (guides/type-conversion.md has the table).
//!
//! | Elixir                          | Python                              |
//! |---------------------------------|-------------------------------------|
//! | `%Date{}` (Calendar.ISO)        | `datetime.date`                     |
//! | `%Time{}`                       | `datetime.time` (naive)             |
//! | `%NaiveDateTime{}`              | `datetime.datetime`, naive          |
//! | `%DateTime{}`                   | `datetime.datetime`, aware          |
//! | `{:timedelta, microseconds}`    | `datetime.timedelta`                |
//! | `%Duration{}` (Elixir >= 1.17)  | `datetime.timedelta` (one way)      |
//!
//! Time zones: an aware datetime keeps its wall time and its offset. Its
//! zone name comes from the `tzinfo` (a `zoneinfo.ZoneInfo`'s key, `Etc/UTC`
//! for UTC, otherwise `tzname()`), read by [`zone_of`]; going to Python
//! ([`zoned`]), `Etc/UTC` is `timezone.utc`, a zone `zoneinfo` knows whose
//! offset agrees is that `ZoneInfo`, and anything else a fixed
//! `timezone(offset, zone_abbr)`. Python's own objects (the tzinfo's
//! methods, `zoneinfo`, `datetime.timezone`) are asked from here, in the
//! interpreter converting: no Python helper runs.
//!
//! Only `Calendar.ISO` values convert: another calendar is a `TypeError`.
//!
//! Attribute and method names are [`py_name`]'s: interned in the main
//! interpreter only, as objects must not cross into own-GIL ones.

use std::borrow::Cow;
use std::sync::Once;

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyString, PyTime, PyTimeAccess,
    PyTzInfo, PyTzInfoAccess,
};
use rustler::{Encoder, Env, Term};

use super::error::Result;
use crate::etf::{Forms, Writer};
use crate::interpreters::{self, loaded_module, py_name};
use crate::terms::{elixir_struct, make_atoms};

mod atoms {
    rustler::atoms! {
        date_module = "Elixir.Date",
        time_module = "Elixir.Time",
        naive_module = "Elixir.NaiveDateTime",
        datetime_module = "Elixir.DateTime",
        duration_module = "Elixir.Duration",
        iso = "Elixir.Calendar.ISO",
        year,
        month,
        week,
        day,
        hour,
        minute,
        second,
        microsecond,
        calendar,
        time_zone,
        zone_abbr,
        utc_offset,
        std_offset,
        timedelta,
    }
}

// ---------------------------------------------------------------------------
// Python -> Elixir

/// Conversion hook: the Elixir form of a date, time, datetime or timedelta;
/// `None` for anything else (an aware `time` included: it stays a handle).
pub(super) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Option<Result<Term<'a>>> {
    Some(match temporal(obj)? {
        Temporal::Naive(value) => Ok(datetime_to_term(env, value, None)),
        Temporal::Utc(value) => Ok(datetime_to_term(env, value, Some(UTC))),
        Temporal::Aware(value) => zone_of(value)
            .map(|zone| datetime_to_term(env, value, zone))
            .map_err(Into::into),
        Temporal::Date(value) => Ok(date_to_term(env, value)),
        Temporal::Time(value) => Ok(time_to_term(env, value)),
        Temporal::Delta(value) => Ok((atoms::timedelta(), delta_micros(value)).encode(env)),
    })
}

/// A date or time value with an Elixir form.
enum Temporal<'a, 'py> {
    /// A datetime without a tzinfo.
    Naive(&'a Bound<'py, PyDateTime>),
    /// A datetime whose tzinfo is `timezone.utc`, whose zone is known
    /// without asking it (main interpreter only: see [`is_utc`]).
    Utc(&'a Bound<'py, PyDateTime>),
    /// Any other tzinfo: [`zone_of`] reads its zone.
    Aware(&'a Bound<'py, PyDateTime>),
    Date(&'a Bound<'py, PyDate>),
    /// Naive only: an aware `time` has no Elixir form (it stays a handle).
    Time(&'a Bound<'py, PyTime>),
    Delta(&'a Bound<'py, PyDelta>),
}

/// Which date or time value `obj` is, if any: what [`to_term`] and
/// [`write_external`] both convert.
fn temporal<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> Option<Temporal<'a, 'py>> {
    // datetime is a subclass of date: it is checked first.
    if let Ok(value) = obj.cast::<PyDateTime>() {
        Some(match value.get_tzinfo() {
            None => Temporal::Naive(value),
            Some(tzinfo) if is_utc(&tzinfo) => Temporal::Utc(value),
            Some(_) => Temporal::Aware(value),
        })
    } else if let Ok(value) = obj.cast::<PyDate>() {
        Some(Temporal::Date(value))
    } else if let Ok(value) = obj.cast::<PyTime>() {
        value
            .get_tzinfo()
            .is_none()
            .then_some(Temporal::Time(value))
    } else if let Ok(value) = obj.cast::<PyDelta>() {
        Some(Temporal::Delta(value))
    } else {
        None
    }
}

/// `timezone.utc`, whose zone is known here both ways ([`UTC`], what
/// [`zone_of`] answers for it), where it may be used: in the main
/// interpreter only. PyO3 keeps one datetime C API for the process, and its
/// `timezone.utc` is an object of the interpreter that loaded it, so an
/// own-GIL sub-interpreter's UTC datetimes take the general path (None):
/// [`zone_of`] reads their zone, [`zoned`] finds its own `timezone.utc`.
fn utc_here(py: Python<'_>) -> Option<Borrowed<'_, '_, PyTzInfo>> {
    if interpreters::is_main(py) {
        PyTzInfo::utc(py).ok()
    } else {
        None
    }
}

/// Whether `tzinfo` is `timezone.utc` (see [`utc_here`]).
fn is_utc(tzinfo: &Bound<'_, PyTzInfo>) -> bool {
    utc_here(tzinfo.py()).is_some_and(|utc| tzinfo.is(&*utc))
}

/// An aware datetime's zone as `DateTime` has it.
struct Zone<'s> {
    utc_offset: i64,
    std_offset: i64,
    time_zone: Cow<'s, str>,
    zone_abbr: Cow<'s, str>,
}

const UTC: Zone<'static> = Zone {
    utc_offset: 0,
    std_offset: 0,
    time_zone: Cow::Borrowed("Etc/UTC"),
    zone_abbr: Cow::Borrowed("UTC"),
};

/// The zone of a datetime with a tzinfo, as `DateTime` has it: the offset
/// from `utcoffset()` split into its standard part and `dst()`, the name a
/// `ZoneInfo`'s key, `Etc/UTC` for UTC (an offset of 0 named `UTC`,
/// `UTC+00:00` or nothing, as `timezone.utc` is), otherwise `tzname()`, or
/// the offset as text (`UTC+02:00`) when the tzinfo gives no name. `None`
/// when the tzinfo gives no offset for it: the datetime is then naive, as
/// Python's docs define it. Offsets are whole seconds, truncated toward
/// zero as `int(offset.total_seconds())` would.
///
/// It calls the datetime's own methods, which ask its tzinfo (a Python
/// class's included), in the order Python's helper did before this was
/// written here: that helper, a Python function, cost 4 us of a 6 us
/// `+02:00` datetime on the development VM.
fn zone_of(value: &Bound<'_, PyDateTime>) -> PyResult<Option<Zone<'static>>> {
    let Some(total) = offset_seconds(&value.call_method0(py_name!(value.py(), "utcoffset"))?)?
    else {
        return Ok(None);
    };
    let std = offset_seconds(&value.call_method0(py_name!(value.py(), "dst"))?)?.unwrap_or(0);
    let name = value.call_method0(py_name!(value.py(), "tzname"))?;
    let abbr = if name.is_none() {
        String::new()
    } else {
        name.extract::<String>()?
    };
    let key = match value.get_tzinfo() {
        Some(tzinfo) => zone_key(&tzinfo)?,
        None => None,
    };
    let (time_zone, zone_abbr) = match key {
        Some(key) => (Cow::Owned(key), Cow::Owned(abbr)),
        None if total == 0 && matches!(abbr.as_str(), "UTC" | "UTC+00:00" | "") => {
            (UTC.time_zone, UTC.zone_abbr)
        }
        None if abbr.is_empty() => {
            let text = offset_text(total);
            (Cow::Owned(text.clone()), Cow::Owned(text))
        }
        None => (Cow::Owned(abbr.clone()), Cow::Owned(abbr)),
    };
    Ok(Some(Zone {
        utc_offset: total - std,
        std_offset: std,
        time_zone,
        zone_abbr,
    }))
}

/// A `ZoneInfo`'s key: the tzinfo's `key` if it is a non-empty str, as
/// `getattr(tzinfo, "key", None)` would find it. A fixed offset (a
/// `datetime.timezone`, which cannot be subclassed) has none and is known by
/// its type: asking it made and cleared an AttributeError, 1.5 us of its
/// 3.6 us on the development VM.
fn zone_key(tzinfo: &Bound<'_, PyTzInfo>) -> PyResult<Option<String>> {
    let py = tzinfo.py();
    if utc_here(py).is_some_and(|utc| tzinfo.get_type().is(utc.get_type())) {
        return Ok(None);
    }
    match tzinfo.getattr(py_name!(py, "key")) {
        Ok(key) => Ok(key
            .cast::<PyString>()
            .ok()
            .map(|key| key.to_str().map(str::to_owned))
            .transpose()?
            .filter(|key| !key.is_empty())),
        Err(err) if err.is_instance_of::<PyAttributeError>(py) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whole seconds of what a tzinfo's `utcoffset` or `dst` gave, truncated
/// toward zero; `None` for `None` (the datetime checked it is a timedelta).
fn offset_seconds(offset: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if offset.is_none() {
        return Ok(None);
    }
    let delta = offset.cast::<PyDelta>()?;
    Ok(Some(delta_micros(delta) / 1_000_000))
}

/// `UTC+02:00` for 7,200 seconds: a zone's name when its tzinfo gives none.
fn offset_text(seconds: i64) -> String {
    let sign = if seconds >= 0 { '+' } else { '-' };
    let seconds = seconds.abs();
    format!("UTC{sign}{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// A timedelta in microseconds (its days, seconds and microseconds).
fn delta_micros(value: &Bound<'_, PyDelta>) -> i64 {
    (value.get_days() as i64 * 86_400 + value.get_seconds() as i64) * 1_000_000
        + value.get_microseconds() as i64
}

fn date_to_term<'a>(env: Env<'a>, value: &Bound<'_, PyDate>) -> Term<'a> {
    let mut fields = calendar_date(env, value).to_vec();
    fields.push((atoms::calendar(), atoms::iso().encode(env)));
    elixir_struct(env, atoms::date_module(), &fields)
}

fn calendar_date<'a>(env: Env<'a>, value: &impl PyDateAccess) -> [(rustler::Atom, Term<'a>); 3] {
    [
        (atoms::year(), value.get_year().encode(env)),
        (atoms::month(), value.get_month().encode(env)),
        (atoms::day(), value.get_day().encode(env)),
    ]
}

fn clock<'a>(env: Env<'a>, value: &impl PyTimeAccess) -> [(rustler::Atom, Term<'a>); 4] {
    [
        (atoms::hour(), value.get_hour().encode(env)),
        (atoms::minute(), value.get_minute().encode(env)),
        (atoms::second(), value.get_second().encode(env)),
        (
            atoms::microsecond(),
            (value.get_microsecond(), 6).encode(env),
        ),
    ]
}

fn time_to_term<'a>(env: Env<'a>, value: &Bound<'_, PyTime>) -> Term<'a> {
    let mut fields = clock(env, value).to_vec();
    fields.push((atoms::calendar(), atoms::iso().encode(env)));
    elixir_struct(env, atoms::time_module(), &fields)
}

/// A `%NaiveDateTime{}`, or with its `zone` a `%DateTime{}`.
fn datetime_to_term<'a>(
    env: Env<'a>,
    value: &Bound<'_, PyDateTime>,
    zone: Option<Zone<'_>>,
) -> Term<'a> {
    let mut fields = calendar_date(env, value).to_vec();
    fields.extend(clock(env, value));
    fields.push((atoms::calendar(), atoms::iso().encode(env)));
    let Some(zone) = zone else {
        return elixir_struct(env, atoms::naive_module(), &fields);
    };
    fields.extend([
        (atoms::utc_offset(), zone.utc_offset.encode(env)),
        (atoms::std_offset(), zone.std_offset.encode(env)),
        (atoms::time_zone(), zone.time_zone.as_ref().encode(env)),
        (atoms::zone_abbr(), zone.zone_abbr.as_ref().encode(env)),
    ]);
    elixir_struct(env, atoms::datetime_module(), &fields)
}

/// Writes a date, a datetime, a naive time or a timedelta straight into
/// the external format, as [`to_term`] converts it, for the writer of
/// large results (`convert::external`); `None` for anything else, and for
/// a datetime whose tzinfo raises ([`to_term`] then reports the error).
/// Without this, each such value was built as a term, then encoded and
/// copied: 3.6-4.6 us a value on the development VM, against 0.8 us for a
/// dict of 8 keys.
pub(super) fn write_external<F: Forms>(
    writer: &mut Writer<F>,
    obj: &Bound<'_, PyAny>,
) -> Option<()> {
    static MADE: Once = Once::new();
    make_atoms(&MADE, &WRITTEN_ATOMS);
    match temporal(obj)? {
        Temporal::Naive(value) => write_datetime(writer, value, None),
        Temporal::Utc(value) => write_datetime(writer, value, Some(&UTC)),
        // A tzinfo that raises: to_term reports it.
        Temporal::Aware(value) => write_datetime(writer, value, zone_of(value).ok()?.as_ref()),
        Temporal::Date(value) => {
            struct_head(writer, DATE_MODULE, 3);
            write_calendar_date(writer, value);
        }
        Temporal::Time(value) => {
            struct_head(writer, TIME_MODULE, 4);
            write_clock(writer, value);
        }
        Temporal::Delta(value) => {
            writer.tuple(2);
            writer.atom(TIMEDELTA);
            writer.int(delta_micros(value));
        }
    }
    Some(())
}

const DATE_MODULE: &str = "Elixir.Date";
const TIME_MODULE: &str = "Elixir.Time";
const NAIVE_MODULE: &str = "Elixir.NaiveDateTime";
const DATETIME_MODULE: &str = "Elixir.DateTime";
const ISO: &str = "Elixir.Calendar.ISO";
const TIMEDELTA: &str = "timedelta";

/// Every atom [`write_external`] writes.
const WRITTEN_ATOMS: [&str; 19] = [
    "__struct__",
    "calendar",
    DATE_MODULE,
    TIME_MODULE,
    NAIVE_MODULE,
    DATETIME_MODULE,
    ISO,
    TIMEDELTA,
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
    "utc_offset",
    "std_offset",
    "time_zone",
    "zone_abbr",
];

/// A struct's map header, `__struct__` and `calendar: Calendar.ISO`, before
/// its `fields` other fields.
fn struct_head<F: Forms>(writer: &mut Writer<F>, module: &str, fields: usize) {
    writer.map(fields + 2);
    writer.atom("__struct__");
    writer.atom(module);
    writer.atom("calendar");
    writer.atom(ISO);
}

/// A `%NaiveDateTime{}`, or with its `zone` a `%DateTime{}`.
fn write_datetime<F: Forms>(
    writer: &mut Writer<F>,
    value: &Bound<'_, PyDateTime>,
    zone: Option<&Zone<'_>>,
) {
    match zone {
        Some(_) => struct_head(writer, DATETIME_MODULE, 11),
        None => struct_head(writer, NAIVE_MODULE, 7),
    }
    write_calendar_date(writer, value);
    write_clock(writer, value);
    if let Some(zone) = zone {
        write_zone(writer, zone);
    }
}

fn write_calendar_date<F: Forms>(writer: &mut Writer<F>, value: &impl PyDateAccess) {
    for (key, number) in [
        ("year", i64::from(value.get_year())),
        ("month", i64::from(value.get_month())),
        ("day", i64::from(value.get_day())),
    ] {
        writer.atom(key);
        writer.int(number);
    }
}

fn write_clock<F: Forms>(writer: &mut Writer<F>, value: &impl PyTimeAccess) {
    for (key, number) in [
        ("hour", value.get_hour()),
        ("minute", value.get_minute()),
        ("second", value.get_second()),
    ] {
        writer.atom(key);
        writer.int(i64::from(number));
    }
    writer.atom("microsecond");
    writer.tuple(2);
    writer.int(i64::from(value.get_microsecond()));
    writer.int(6);
}

fn write_zone<F: Forms>(writer: &mut Writer<F>, zone: &Zone<'_>) {
    writer.atom("utc_offset");
    writer.int(zone.utc_offset);
    writer.atom("std_offset");
    writer.int(zone.std_offset);
    writer.atom("time_zone");
    writer.binary(zone.time_zone.as_bytes());
    writer.atom("zone_abbr");
    writer.binary(zone.zone_abbr.as_bytes());
}

// ---------------------------------------------------------------------------
// Elixir -> Python

/// Conversion hook for maps: the Python value of a `%Date{}`, `%Time{}`,
/// `%NaiveDateTime{}`, `%DateTime{}` or `%Duration{}`.
pub(super) fn struct_to_py<'py, 'a>(
    py: Python<'py>,
    term: Term<'a>,
    module: Term<'a>,
) -> Option<Result<Bound<'py, PyAny>>> {
    let env = term.get_env();
    let is = |atom: rustler::Atom| module == atom.to_term(env);
    let made = if is(atoms::date_module()) {
        date_to_py(py, term)
    } else if is(atoms::time_module()) {
        time_to_py(py, term)
    } else if is(atoms::naive_module()) {
        naive_to_py(py, term)
    } else if is(atoms::datetime_module()) {
        datetime_to_py(py, term)
    } else if is(atoms::duration_module()) {
        duration_to_py(py, term)
    } else {
        return None;
    };
    Some(made.map_err(Into::into))
}

/// Conversion hook for tuples: `{:timedelta, microseconds}`.
pub(super) fn tagged_to_py<'py>(
    py: Python<'py>,
    items: &[Term<'_>],
) -> Option<Result<Bound<'py, PyAny>>> {
    if items.len() != 2 || items[0] != atoms::timedelta().to_term(items[0].get_env()) {
        return None;
    }
    let micros: i64 = items[1].decode().ok()?;
    Some(delta(py, micros).map_err(Into::into))
}

fn delta(py: Python<'_>, micros: i64) -> PyResult<Bound<'_, PyAny>> {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let days = i32::try_from(days).map_err(|_| PyValueError::new_err("timedelta out of range"))?;
    Ok(PyDelta::new(
        py,
        days,
        (rest / 1_000_000) as i32,
        (rest % 1_000_000) as i32,
        true,
    )?
    .into_any())
}

fn field<'a, T: rustler::Decoder<'a>>(term: Term<'a>, name: rustler::Atom) -> PyResult<T> {
    term.map_get(name)
        .ok()
        .and_then(|value| value.decode().ok())
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{:?}: field {:?} is missing or has the wrong type",
                term.map_get(crate::atoms::__struct__()).ok(),
                name
            ))
        })
}

fn iso_only(term: Term<'_>) -> PyResult<()> {
    let calendar = term.map_get(atoms::calendar()).ok();
    if calendar == Some(atoms::iso().to_term(term.get_env())) {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "only Calendar.ISO dates and times convert to Python, got calendar {calendar:?}"
        )))
    }
}

/// Year, month and day of an ISO date, datetime or naive datetime.
fn ymd(term: Term<'_>) -> PyResult<(i32, u8, u8)> {
    iso_only(term)?;
    Ok((
        field(term, atoms::year())?,
        field(term, atoms::month())?,
        field(term, atoms::day())?,
    ))
}

/// Hour, minute, second and microsecond of an ISO time or datetime.
fn hms(term: Term<'_>) -> PyResult<(u8, u8, u8, u32)> {
    iso_only(term)?;
    let (micros, _precision): (u32, u32) = field(term, atoms::microsecond())?;
    Ok((
        field(term, atoms::hour())?,
        field(term, atoms::minute())?,
        field(term, atoms::second())?,
        micros,
    ))
}

fn date_to_py<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    let (year, month, day) = ymd(term)?;
    Ok(PyDate::new(py, year, month, day)?.into_any())
}

fn time_to_py<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    let (hour, minute, second, micros) = hms(term)?;
    Ok(PyTime::new(py, hour, minute, second, micros, None)?.into_any())
}

fn naive_to_py<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    wall_clock(py, term, None)
}

/// A `datetime` of the term's date and time fields, with `tzinfo`.
fn wall_clock<'py>(
    py: Python<'py>,
    term: Term<'_>,
    tzinfo: Option<&Bound<'py, PyTzInfo>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (year, month, day) = ymd(term)?;
    let (hour, minute, second, micros) = hms(term)?;
    Ok(PyDateTime::new(py, year, month, day, hour, minute, second, micros, tzinfo)?.into_any())
}

fn datetime_to_py<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    let utc_offset: i64 = field(term, atoms::utc_offset())?;
    let std_offset: i64 = field(term, atoms::std_offset())?;
    let zone: String = field(term, atoms::time_zone())?;
    // UTC, the usual zone, takes the C API's `timezone.utc` where it may
    // ([`utc_here`]): a Python helper took 6.3 us a value on the development
    // VM (a list of 100,000 DateTimes in 630 ms, against 68 ms for as many
    // NaiveDateTimes), for the same `datetime(..., tzinfo=timezone.utc)`.
    if zone == UTC.time_zone && utc_offset + std_offset == 0 {
        if let Some(utc) = utc_here(py) {
            return wall_clock(py, term, Some(&utc));
        }
    }
    let abbr: String = field(term, atoms::zone_abbr())?;
    zoned(py, term, utc_offset + std_offset, &zone, &abbr)
}

/// A datetime of the term's wall time in `zone`, with `offset` seconds from
/// UTC: in this interpreter's `timezone.utc` for `Etc/UTC` at 0; in the
/// `ZoneInfo` of `zone` when `zoneinfo` knows it (a name with a `/`) and
/// gives that offset for the wall time in either fold (the second fold is
/// the repeated hour after a change); otherwise in a fixed
/// `timezone(offset, abbr)` (`abbr` empty: Python names it, where the
/// Python helper this replaces raised a TypeError). That helper cost 7.2 us
/// a Europe/Paris DateTime on the development VM.
fn zoned<'py>(
    py: Python<'py>,
    term: Term<'_>,
    offset: i64,
    zone: &str,
    abbr: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (year, month, day) = ymd(term)?;
    let (hour, minute, second, micros) = hms(term)?;
    let at = |tzinfo: &Bound<'py, PyTzInfo>, fold| {
        PyDateTime::new_with_fold(
            py,
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            Some(tzinfo),
            fold,
        )
    };
    // Only the UTC and fixed-offset cases need it (not a ZoneInfo's).
    let timezone = || loaded_module(py, "datetime")?.getattr(py_name!(py, "timezone"));
    // Where `utc_here` has no UTC (a sub-interpreter): this interpreter's.
    if zone == UTC.time_zone && offset == 0 {
        let utc = timezone()?
            .getattr(py_name!(py, "utc"))?
            .cast_into::<PyTzInfo>()?;
        return Ok(at(&utc, false)?.into_any());
    }
    // No ZoneInfo has an offset beyond a day, nor timedelta one beyond
    // i64 microseconds: such an offset is the fixed timezone's ValueError.
    let micros = offset
        .checked_mul(1_000_000)
        .ok_or_else(|| PyValueError::new_err("timedelta out of range"))?;
    if let Some(tzinfo) = zone_info(py, zone) {
        for fold in [false, true] {
            let candidate = at(&tzinfo, fold)?;
            let found = candidate.call_method0(py_name!(py, "utcoffset"))?;
            if found
                .cast::<PyDelta>()
                .is_ok_and(|found| delta_micros(found) == micros)
            {
                return Ok(candidate.into_any());
            }
        }
    }
    let offset = delta(py, micros)?;
    // timezone() takes a name or none, never None.
    let tzinfo = match abbr {
        "" => timezone()?.call1((offset,))?,
        name => timezone()?.call1((offset, name))?,
    };
    let tzinfo = tzinfo.cast_into::<PyTzInfo>()?;
    Ok(at(&tzinfo, false)?.into_any())
}

/// The `zoneinfo.ZoneInfo` of `zone` if it names one (`Area/Place`) and
/// this interpreter's `zoneinfo` knows it; `None` otherwise, whatever it
/// raised (an unknown key, no time-zone data, no `zoneinfo`).
fn zone_info<'py>(py: Python<'py>, zone: &str) -> Option<Bound<'py, PyTzInfo>> {
    if !zone.contains('/') {
        return None;
    }
    let zoneinfo = loaded_module(py, "zoneinfo").ok()?;
    let found = zoneinfo
        .getattr(py_name!(py, "ZoneInfo"))
        .ok()?
        .call1((zone,))
        .ok()?;
    found.cast_into::<PyTzInfo>().ok()
}

/// `%Duration{}` without months or years (whose length varies).
fn duration_to_py<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    let get = |name| -> PyResult<i64> { field(term, name) };
    if get(atoms::year())? != 0 || get(atoms::month())? != 0 {
        return Err(PyValueError::new_err(
            "a Duration with years or months has no timedelta: their length varies",
        ));
    }
    let (micro, _precision): (i64, u32) = field(term, atoms::microsecond())?;
    let seconds = ((get(atoms::week())? * 7 + get(atoms::day())?) * 24 + get(atoms::hour())?)
        * 3600
        + get(atoms::minute())? * 60
        + get(atoms::second())?;
    let total = seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(micro))
        .ok_or_else(|| PyValueError::new_err("Duration out of range"))?;
    delta(py, total)
}
