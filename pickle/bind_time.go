package pickle

import (
	"errors"
	"fmt"
	"time"
)

// datetime.datetime and datetime.date <-> time.Time.
//
// CPython pickles a datetime as datetime.datetime(state) for a naive one and
// datetime.datetime(state, tzinfo) for an aware one, where state is 10 bytes (year,
// month with the fold in its top bit at protocol 4 and up, day, hour, minute,
// second, microsecond) — bytes at protocol 3 and up, a _codecs.encode(text, "latin1")
// call at protocol 2, Latin-1 text in Python 2 pickles. A date is datetime.date(state)
// with 4 bytes. The tzinfo of an aware datetime is datetime.timezone(timedelta[, name])
// or zoneinfo.ZoneInfo, reduced to getattr(ZoneInfo, "_unpickle")(key, from_cache).

var errNotTime = errors.New("not a datetime")

var (
	dateTimeClass = Global{"datetime", "datetime"}
	dateClass     = Global{"datetime", "date"}
	timezoneClass = Global{"datetime", "timezone"}
	timedeltaCls  = Global{"datetime", "timedelta"}
	zoneInfoClass = Global{"zoneinfo", "ZoneInfo"}
)

// timeOf converts a pickled datetime.datetime or datetime.date to a time.Time: an
// aware datetime at its instant in a location of its tzinfo, a naive datetime at its
// wall clock in UTC, a date at midnight UTC. It returns errNotTime for other values.
func timeOf(v any) (time.Time, error) {
	o, ok := v.(*Object)
	if !ok || o.Construct != Reduce || o.Args == nil || len(o.Args.Items) == 0 || o.HasState {
		return time.Time{}, errNotTime
	}
	switch o.Callable {
	case dateTimeClass:
		if len(o.Args.Items) > 2 {
			return time.Time{}, errNotTime
		}
		st, ok := stateBytes(o.Args.Items[0])
		if !ok || len(st) != 10 {
			return time.Time{}, errNotTime
		}
		fold := st[2]&0x80 != 0
		year, month, day := int(st[0])<<8|int(st[1]), time.Month(st[2]&0x7f), int(st[3])
		hour, minute, sec := int(st[4]), int(st[5]), int(st[6])
		us := int(st[7])<<16 | int(st[8])<<8 | int(st[9])
		if !validDate(year, int(month), day) || hour > 23 || minute > 59 || sec > 59 || us > 999999 {
			return time.Time{}, fmt.Errorf("datetime state %x is out of range", st)
		}
		if len(o.Args.Items) == 1 || o.Args.Items[1] == nil {
			return time.Date(year, month, day, hour, minute, sec, us*1000, time.UTC), nil
		}
		loc, err := locationOf(o.Args.Items[1])
		if err != nil {
			return time.Time{}, err
		}
		return wallClock(year, month, day, hour, minute, sec, us*1000, loc, fold), nil
	case dateClass:
		st, ok := stateBytes(o.Args.Items[0])
		if !ok || len(st) != 4 || len(o.Args.Items) != 1 {
			return time.Time{}, errNotTime
		}
		year, month, day := int(st[0])<<8|int(st[1]), time.Month(st[2]), int(st[3])
		if !validDate(year, int(month), day) {
			return time.Time{}, fmt.Errorf("date state %x is out of range", st)
		}
		return time.Date(year, month, day, 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, errNotTime
}

// stateBytes returns the packed state of a datetime or date in any of its forms.
func stateBytes(v any) ([]byte, bool) {
	if s, ok := v.(string); ok {
		return latin1Bytes(s)
	}
	return bytesArg(v)
}

// wallClock returns the time with the given wall clock in loc; fold picks the later of
// two times with that wall clock (when clocks are set back), as Python's fold=1.
func wallClock(year int, month time.Month, day, hour, minute, sec, nsec int, loc *time.Location, fold bool) time.Time {
	t := time.Date(year, month, day, hour, minute, sec, nsec, loc)
	utc := time.Date(year, month, day, hour, minute, sec, nsec, time.UTC)
	var first, last time.Time
	for _, probe := range []time.Time{utc.Add(-24 * time.Hour), utc.Add(24 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		c := utc.Add(-time.Duration(off) * time.Second).In(loc)
		if c.Year() != year || c.Month() != month || c.Day() != day || c.Hour() != hour || c.Minute() != minute || c.Second() != sec {
			continue
		}
		if first.IsZero() || c.Before(first) {
			first = c
		}
		if last.IsZero() || c.After(last) {
			last = c
		}
	}
	switch {
	case first.IsZero():
		return t // a wall clock skipped when clocks were set forward
	case fold:
		return last
	}
	return first
}

// isFold reports whether t is the later of two times with its wall clock in its
// location.
func isFold(t time.Time) bool {
	return !wallClock(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location(), false).Equal(t)
}

// locationOf converts a pickled tzinfo.
func locationOf(v any) (*time.Location, error) {
	o, ok := v.(*Object)
	if !ok || o.Construct != Reduce || o.Args == nil {
		return nil, fmt.Errorf("tzinfo %s is not supported; decode the datetime into a pickle.Value field", TypeName(v))
	}
	if o.Callable == timezoneClass && (len(o.Args.Items) == 1 || len(o.Args.Items) == 2) {
		off, ok := timedeltaSeconds(o.Args.Items[0])
		if !ok || off <= -86400 || off >= 86400 {
			return nil, fmt.Errorf("datetime.timezone with an offset that is not whole seconds under a day")
		}
		if len(o.Args.Items) == 2 {
			name, ok := o.Args.Items[1].(string)
			if !ok {
				return nil, fmt.Errorf("datetime.timezone with a name of type %s", TypeName(o.Args.Items[1]))
			}
			return time.FixedZone(name, int(off)), nil
		}
		if off == 0 {
			return time.UTC, nil
		}
		return time.FixedZone("", int(off)), nil
	}
	if key, ok := zoneInfoKey(o); ok {
		loc, err := time.LoadLocation(key)
		if err != nil {
			return nil, fmt.Errorf("zoneinfo.ZoneInfo(%q): %v", key, err)
		}
		return loc, nil
	}
	return nil, fmt.Errorf("tzinfo %s is not supported; decode the datetime into a pickle.Value field", TypeName(v))
}

// zoneInfoKey returns the key of a pickled zoneinfo.ZoneInfo.
func zoneInfoKey(o *Object) (string, bool) {
	if o.Construct != Reduce || o.Args == nil || len(o.Args.Items) != 2 {
		return "", false
	}
	ok := o.Callable == Global{"zoneinfo", "ZoneInfo._unpickle"}
	if c, isObj := o.Callable.(*Object); isObj && c.Construct == Reduce && c.Callable == (Global{"builtins", "getattr"}) &&
		c.Args != nil && len(c.Args.Items) == 2 && c.Args.Items[0] == zoneInfoClass && c.Args.Items[1] == "_unpickle" {
		ok = true
	}
	key, isStr := o.Args.Items[0].(string)
	return key, ok && isStr
}

// timedeltaSeconds returns the length of a pickled datetime.timedelta(days, seconds,
// microseconds) in whole seconds.
func timedeltaSeconds(v any) (int64, bool) {
	o, ok := v.(*Object)
	if !ok || o.Construct != Reduce || o.Callable != timedeltaCls || o.Args == nil || len(o.Args.Items) != 3 {
		return 0, false
	}
	days, ok1 := o.Args.Items[0].(int64)
	secs, ok2 := o.Args.Items[1].(int64)
	us, ok3 := o.Args.Items[2].(int64)
	if !ok1 || !ok2 || !ok3 || us != 0 || days < -2 || days > 1 {
		return 0, false
	}
	return days*86400 + secs, true
}

// timeObject returns the datetime (or date) to write for t where old was: old itself
// when it converts to the same time in the same zone; else a datetime of the same
// kind as old (naive, aware with old's tzinfo when t is in that zone, or a
// fixed-offset timezone), or for a new value the kind the field's options ask for.
func timeObject(t time.Time, old any, o fieldOpts) (any, error) {
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("time %v is outside the years 1 to 9999 of Python's datetime", t)
	}
	var oldObj *Object
	if prev, err := timeOf(old); err == nil {
		if sameTime(prev, t) {
			return old, nil
		}
		oldObj = old.(*Object)
	}
	date, naive := o.date, o.naive
	if oldObj != nil {
		date = oldObj.Callable == dateClass
		naive = !date && (len(oldObj.Args.Items) == 1 || oldObj.Args.Items[1] == nil)
	}
	switch {
	case date:
		y, m, d := t.Date()
		return &Object{Callable: dateClass, Construct: Reduce, Args: NewTuple([]byte{byte(y >> 8), byte(y), byte(m), byte(d)})}, nil
	case naive:
		return naiveDateTimeObject(t.UTC()), nil
	}
	if oldObj != nil && keepsZone(oldObj.Args.Items[1], t) {
		// Keep the tzinfo object when t is in its zone, so that datetimes sharing one
		// tzinfo still do.
		tz := oldObj.Args.Items[1]
		st := dateTimeState(t)
		if tz.(*Object).Callable != timezoneClass && isFold(t) {
			st[2] |= 0x80
		}
		return &Object{Callable: dateTimeClass, Construct: Reduce, Args: NewTuple(st, tz)}, nil
	}
	return dateTimeObject(t)
}

// sameTime reports whether two times are the same instant with the same UTC offset
// and zone name.
func sameTime(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && an == bn && ao == bo
}

// keepsZone reports whether t is in the zone of a pickled tzinfo: the offset and name
// of a datetime.timezone, the key of a zoneinfo.ZoneInfo.
func keepsZone(tz any, t time.Time) bool {
	o, ok := tz.(*Object)
	if !ok {
		return false
	}
	if key, ok := zoneInfoKey(o); ok {
		return t.Location().String() == key
	}
	loc, err := locationOf(o)
	if err != nil || o.Callable != timezoneClass {
		return false
	}
	name, off := t.Zone()
	wantName, wantOff := time.Date(2000, 1, 1, 0, 0, 0, 0, loc).Zone()
	return off == wantOff && (name == wantName || len(o.Args.Items) == 1)
}
