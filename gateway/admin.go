package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/migrate"
)

// The sessions command: the administration tool session3 never had.
//
//	PROGRAM sessions [-sessions DIR] list [-json]
//	PROGRAM sessions [-sessions DIR] show ID
//	PROGRAM sessions [-sessions DIR] set ID NAME=JSON
//	PROGRAM sessions [-sessions DIR] delete ID | delete -user NAME
//	PROGRAM sessions [-sessions DIR] sweep -older DURATION
//	PROGRAM sessions migrate -from DIR|URL -to DIR|URL [-keep-existing]
//
// DIR is a session directory or, in its place, a PostgreSQL database by its
// postgres:// URL. The commands read and write through the same stores as the
// gateway (in a directory, under the same flock(2) locks as session3), so they are
// safe to run beside them. set changes one attribute
// and writes every other byte of the pickle back as it was (the pickle package
// re-encodes what it decoded identically to CPython). set and delete take the
// session's turn as a request does (per-session ordering, through the gateways'
// lock directory or the database's advisory locks), so a request the gateway has in
// flight for that session finishes first and cannot save its older copy over the
// change afterwards.
//
// Exit status: 0 on success, 1 when a session is missing or a file cannot be read or
// written, 2 for a usage error or an invalid session id.

const sessionsUsage = `usage: %s sessions [-sessions DIR | -config FILE] COMMAND

DIR is a session directory, or a PostgreSQL database as postgres://USER@HOST/DB
(-dir DIR is the same as -sessions DIR).

Commands:
  list [-json]            every session: id, user, class, idle time (since the file last changed)
  show ID                 every attribute of a session with its Python type, as JSON
  set ID NAME=JSON        set one attribute to a JSON value (null, true, 12, 1.5, "text", [...],
                          {...}, or a tagged form such as {"__tuple__": [1, 2]}); all else is kept
  delete ID               delete a session (its user is logged out)
  delete -user NAME       delete every session whose user is NAME (logged out everywhere)
  sweep -older DURATION   delete sessions idle for longer than DURATION (e.g. 24h) and stale
                          empty files, as session3's delete_old_sessions; prints deleted and remaining
  migrate -from DIR -to DIR [-keep-existing]
                          copy every session from one store to another, e.g. a directory into
                          postgres://..., or back; sessions the destination holds already are
                          skipped, so it can be run again to finish an interrupted copy; prints
                          the counts. -keep-existing keeps a destination's session that differs

Flags:
`

// exitError carries an exit status with its message.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func usageErr(format string, args ...any) error {
	return exitError{2, fmt.Errorf(format, args...)}
}

func (g *Gateway) runSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	prog := g.name()
	fs := flag.NewFlagSet(prog+" sessions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirFlag := fs.String("sessions", "", "the session `DIR`ectory or postgres:// URL, as the gateway's -sessions (default: the configuration file's, else "+g.Config.SessionsDir+")")
	fs.StringVar(dirFlag, "dir", "", "the same as -sessions")
	configFlag := fs.String("config", "", "take the session directory or database from the configuration `FILE`")
	lockFlag := fs.String("order-lock-dir", "", "the gateways' per-session lock `DIR`ectory, as the gateway's -order-lock-dir: set and delete take a session's turn in it, and refuse when it does not exist (it is never created here) (default: the configuration file's, else the session directory's name + \".locks\")")
	fs.StringVar(lockFlag, "lock-dir", "", "the same as -order-lock-dir")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), sessionsUsage, prog)
		fs.PrintDefaults()
	}
	if code, ok := parseCommand(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cfg := g.Config.clone()
	if *configFlag != "" {
		if _, err := loadFile(*configFlag, &cfg); err != nil {
			fmt.Fprintln(stderr, prog+" sessions:", err)
			return 2
		}
	}
	dir, lockDir := cfg.SessionsDir, cfg.Ordering.LockDir
	newClass, err := resolveClass(cfg.NewClass, cfg.Classes)
	if err != nil {
		fmt.Fprintln(stderr, prog+" sessions:", err)
		return 2
	}
	env := sessionsEnv{classes: append([]quixote.Class{newClass}, cfg.Classes...), userName: userNamer(cfg.UserName)}
	if *dirFlag != "" {
		dir = *dirFlag
	}
	if *lockFlag != "" {
		lockDir = *lockFlag
	}
	if lockDir == "" {
		lockDir, env.lockDirDefault = defaultLockDir(dir), true
	}
	err = sessionsCommand(ctx, env, prog, dir, lockDir, fs.Arg(0), fs.Args()[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, prog+" sessions:", err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// sessionsEnv is what the admin commands know of the application: its session
// classes (to read and write its sessions as the gateway does) and how it names a
// session's user (Config.UserName).
type sessionsEnv struct {
	classes  []quixote.Class
	userName func(*quixote.Session) string
	// lockDirDefault: no lock directory was configured; the default was taken.
	lockDirDefault bool
}

func sessionsCommand(ctx context.Context, env sessionsEnv, prog, dirName, lockDir, cmd string, args []string, stdout, stderr io.Writer) error {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	openAt := func(spec string, create bool) (quixote.IterableStore, error) {
		// Short waits: an administrator wants an answer, and an empty file is reported.
		st, closeStore, err := openStore(ctx, spec, storeOptions{admin: true, create: create, classes: env.classes, userName: env.userName})
		if err != nil {
			return nil, err
		}
		closers = append(closers, closeStore)
		return st, nil
	}
	open := func() (quixote.IterableStore, error) { return openAt(dirName, false) }
	argsN := func(n int, form string) error {
		if len(args) != n {
			return usageErr("usage: %s sessions [-sessions DIR] %s", prog, form)
		}
		return nil
	}
	checkID := func(id string) error {
		if err := store.ValidID(id); err != nil {
			return usageErr("%q is not a session id: %v", id, err)
		}
		return nil
	}

	switch cmd {
	case "list":
		form := prog + " sessions [-sessions DIR] list [-json]"
		fs := flag.NewFlagSet("list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parseSubcommand(fs, args, form, stdout); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usageErr("usage: %s", form)
		}
		dir, err := open()
		if err != nil {
			return err
		}
		return listSessions(ctx, env, dir, *asJSON, stdout)
	case "show":
		if err := argsN(1, "show ID"); err != nil {
			return err
		}
		if err := checkID(args[0]); err != nil {
			return err
		}
		dir, err := open()
		if err != nil {
			return err
		}
		return showSession(ctx, env, dir, args[0], stdout)
	case "set":
		if err := argsN(2, "set ID NAME=JSON"); err != nil {
			return err
		}
		if err := checkID(args[0]); err != nil {
			return err
		}
		name, value, ok := strings.Cut(args[1], "=")
		if !ok {
			return usageErr("%q: want NAME=JSON, e.g. user='\"alice\"' or counter=3", args[1])
		}
		dir, err := open()
		if err != nil {
			return err
		}
		l, err := adminLocker(dir, dirName, lockDir, env.lockDirDefault)
		if err != nil {
			return err
		}
		return inTurn(ctx, l, args[0], func() error {
			return setAttribute(ctx, env, dir, args[0], name, value, stdout)
		})
	case "delete":
		form := prog + " sessions [-sessions DIR] delete ID | delete -user NAME"
		fs := flag.NewFlagSet("delete", flag.ContinueOnError)
		user := fs.String("user", "", "delete every session of the user `NAME` (log them out everywhere)")
		if err := parseSubcommand(fs, args, form, stdout); err != nil {
			return err
		}
		if (*user == "") == (fs.NArg() != 1) {
			return usageErr("usage: %s", form)
		}
		dir, err := open()
		if err != nil {
			return err
		}
		l, err := adminLocker(dir, dirName, lockDir, env.lockDirDefault)
		if err != nil {
			return err
		}
		if *user != "" {
			return deleteUser(ctx, env, dir, l, *user, stdout)
		}
		id := fs.Arg(0)
		if err := checkID(id); err != nil {
			return err
		}
		err = inTurn(ctx, l, id, func() error { return dir.Delete(ctx, id) })
		if err != nil {
			return sessionErr(id, err)
		}
		fmt.Fprintf(stdout, "deleted %s\n", id)
		return nil
	case "sweep":
		form := prog + " sessions [-sessions DIR] sweep -older DURATION (e.g. 24h)"
		fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
		older := fs.Duration("older", -1, "delete sessions idle for longer than this `DURATION`")
		if err := parseSubcommand(fs, args, form, stdout); err != nil {
			return err
		}
		if fs.NArg() > 0 || *older < 0 {
			return usageErr("usage: %s", form)
		}
		dir, err := open()
		if err != nil {
			return err
		}
		deleted, remaining, err := dir.DeleteIdle(*older)
		fmt.Fprintf(stdout, "deleted %d, remaining %d\n", deleted, remaining)
		return err
	case "migrate":
		form := prog + " sessions migrate -from DIR|URL -to DIR|URL [-keep-existing]"
		fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
		from := fs.String("from", "", "copy the sessions of this `DIR`ectory or postgres:// URL")
		to := fs.String("to", "", "into this `DIR`ectory (created if missing) or postgres:// URL (its table created if missing)")
		keep := fs.Bool("keep-existing", false, "leave a session the destination holds with other bytes as it is, instead of replacing it")
		if err := parseSubcommand(fs, args, form, stdout); err != nil {
			return err
		}
		if fs.NArg() > 0 || *from == "" || *to == "" {
			return usageErr("usage: %s", form)
		}
		if *from == *to {
			return usageErr("-from and -to name the same store")
		}
		src, err := openAt(*from, false)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		dst, err := openAt(*to, true)
		if err != nil {
			return fmt.Errorf("-to: %w", err)
		}
		return migrateSessions(ctx, src, dst, *keep, stdout)
	case "help", "-h", "-help":
		fmt.Fprintf(stdout, sessionsUsage, prog)
		return flag.ErrHelp
	}
	return usageErr("unknown command %q (list, show, set, delete, sweep or migrate)", cmd)
}

// migrateSessions copies every session of src into dst (see migrate.Copy) and prints
// what it did, also when it stopped early: running it again goes on from there.
func migrateSessions(ctx context.Context, src, dst quixote.IterableStore, keep bool, stdout io.Writer) error {
	fmt.Fprintf(stdout, "copying sessions from %s to %s\n", describeStore(src), describeStore(dst))
	counts, err := migrate.Copy(ctx, src, dst, migrate.Options{KeepExisting: keep})
	fmt.Fprintln(stdout, counts)
	if err != nil && counts.Failed == 0 {
		return fmt.Errorf("%w; run the same command again to go on", err)
	}
	return err
}

// sessionErr words a store error about one session.
func sessionErr(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no session %s", id)
	}
	return fmt.Errorf("session %s: %w", id, err)
}

// loadSession reads and decodes one session.
func loadSession(ctx context.Context, env sessionsEnv, dir quixote.Store, id string) (*quixote.Session, []byte, error) {
	data, err := dir.Load(ctx, id)
	if err != nil {
		return nil, nil, sessionErr(id, err)
	}
	s, err := quixote.Decode(data, env.classes...)
	if err != nil {
		return nil, data, fmt.Errorf("session %s: %w", id, err)
	}
	return s, data, nil
}

type listEntry struct {
	ID          string          `json:"id"`
	User        json.RawMessage `json:"user,omitempty"`
	UserName    string          `json:"user_name,omitempty"` // Config.UserName's`
	Class       string          `json:"class,omitempty"`
	IdleSeconds float64         `json:"idle_seconds"`
	Modified    time.Time       `json:"modified"`
	Error       string          `json:"error,omitempty"`

	userText string
}

func listSessions(ctx context.Context, env sessionsEnv, dir quixote.IterableStore, asJSON bool, stdout io.Writer) error {
	ids, err := dir.IDs(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	entries := []listEntry{}
	failed := 0
	for _, id := range ids {
		e := listEntry{ID: id}
		mod, known, err := modTime(ctx, dir, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if known && err == nil {
			e.Modified = mod.UTC()
			e.IdleSeconds = now.Sub(mod).Round(time.Second).Seconds()
		}
		s, _, err := loadSession(ctx, env, dir, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			e.Error = err.Error()
			failed++
		} else {
			e.Class = s.Class().String()
			// The name delete -user matches, else what Python's str() shows.
			e.UserName = env.userName(s)
			e.userText = e.UserName
			if e.userText == "" {
				e.userText = pytext.Str(s.User())
			}
			if e.User, err = pickle.ToJSON(s.User()); err != nil {
				e.User = nil
			}
		}
		entries = append(entries, e)
	}
	if asJSON {
		out, err := json.MarshalIndent(entries, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tCLASS\tIDLE")
		for _, e := range entries {
			idle := (time.Duration(e.IdleSeconds) * time.Second).String()
			if e.Error != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t%s\t(%s)\n", e.ID, idle, e.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, e.userText, e.Class, idle)
		}
		tw.Flush()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d session files could not be read", failed, len(entries))
	}
	return nil
}

// showSession prints a session as JSON: its file's facts, then every attribute of the
// pickled object, in order, with its Python type and its value in pickle.ToJSON's form.
func showSession(ctx context.Context, env sessionsEnv, dir quixote.IterableStore, id string, stdout io.Writer) error {
	s, data, err := loadSession(ctx, env, dir, id)
	if err != nil {
		return err
	}
	mod, known, err := modTime(ctx, dir, id)
	if err != nil {
		return sessionErr(id, err)
	}
	var b bytes.Buffer
	field := func(name string, v any) {
		k, _ := json.Marshal(name)
		val, _ := json.Marshal(v)
		fmt.Fprintf(&b, "%s:%s,", k, val)
	}
	b.WriteByte('{')
	field("id", id)
	field("class", s.Class().String())
	if d, ok := dir.(interface{ Dir() string }); ok {
		field("file", filepath.Join(d.Dir(), id))
	} else {
		field("store", describeStore(dir))
	}
	field("size", len(data))
	if known {
		field("modified", mod.UTC())
	}
	b.WriteString(`"attributes":{`)
	i := 0
	for name, v := range s.Object().Attrs().All() {
		key, ok := name.(string)
		if !ok {
			key = pytext.Repr(name) // a non-str key in __dict__: possible, if odd
		}
		val, err := pickle.ToJSON(v)
		if err != nil {
			return fmt.Errorf("session %s: attribute %s: %w", id, key, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		i++
		k, _ := json.Marshal(key)
		t, _ := json.Marshal(pickle.TypeName(v))
		fmt.Fprintf(&b, `%s:{"type":%s,"value":%s}`, k, t, val)
	}
	b.WriteString("}}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = stdout.Write(out.Bytes())
	return err
}

var attrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// setAttribute sets one attribute of a stored session and saves it; every other
// attribute is written back as it was loaded. The result must still be a session the
// gateway (and so session3) can use, or nothing is written.
func setAttribute(ctx context.Context, env sessionsEnv, dir quixote.Store, id, name, value string, stdout io.Writer) error {
	if !attrName.MatchString(name) {
		return usageErr("%q is not an attribute name", name)
	}
	if name == "id" {
		return usageErr("the id names the session's file and cookie; it cannot be changed")
	}
	v, err := pickle.FromJSON([]byte(value))
	if err != nil {
		return usageErr("%s=%s: not a JSON value: %v (a string needs its quotes: %s='\"text\"')", name, value, err, name)
	}
	s, _, err := loadSession(ctx, env, dir, id)
	if err != nil {
		return err
	}
	if name == "user" {
		err = s.SetUser(v)
	} else {
		err = s.Object().SetAttr(name, v)
	}
	if err != nil {
		return fmt.Errorf("session %s: %s: %w", id, name, err)
	}
	data, err := s.Encode()
	if err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	if _, err := quixote.Decode(data); err != nil {
		return exitError{2, fmt.Errorf("session %s: not written: with %s=%s it would no longer be a session: %w", id, name, value, err)}
	}
	if err := dir.Save(ctx, id, data); err != nil {
		return sessionErr(id, err)
	}
	shown, _ := pickle.ToJSON(v)
	fmt.Fprintf(stdout, "%s: %s = %s (%s)\n", id, name, shown, pickle.TypeName(v))
	return nil
}

// parseCommand parses an administration command's flags. -h prints the command's
// usage (fs.Usage) on stderr; an invalid flag prints one line, the error and where
// the usage is, not the whole usage. When it cannot go on, it returns the exit
// status and false.
func parseCommand(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the flag package would print the error and the usage
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nrun %s -h for the usage\n", fs.Name(), err, fs.Name())
		return 2, false
	}
	return 0, true
}

// parseSubcommand parses the flags of a sessions command (list, delete, ...), whose
// usage is form: -h prints it with the flags; an invalid flag is a usage error that
// names it once.
func parseSubcommand(fs *flag.FlagSet, args []string, form string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: %s\n\nFlags:\n", form)
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		for _, f := range []string{"-sessions", "-dir", "-config", "-order-lock-dir", "-lock-dir"} {
			if strings.HasSuffix(err.Error(), "not defined: "+f) {
				return usageErr("%s goes before the command (usage: %s)", f, form)
			}
		}
		return usageErr("%v (usage: %s)", err, form)
	}
	return nil
}
