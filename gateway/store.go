package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// IsDatabaseURL reports whether a sessions setting (Config.SessionsDir, -sessions,
// sessions.dir) names a PostgreSQL database, postgres://… or postgresql://…, rather
// than a session directory.
func IsDatabaseURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// storeOptions say how openStore opens a store.
type storeOptions struct {
	staging  string                                // the directory store's staging directory
	lockWait func(op string, waited time.Duration) // the lock-wait hook, for the metrics
	classes  []quixote.Class                       // to read a session's user for the database's user_name
	userName func(*quixote.Session) string         // names it (Config.UserName; nil: Session.UserName)
	create   bool                                  // create a missing session directory
	admin    bool                                  // short waits: an administrator wants an answer
	fileMode os.FileMode                           // the session files' exact mode (0: the store's default)
	inPlace  bool                                  // small saves overwrite their files (store.WithInPlace)
}

// openStore opens the store a sessions setting names: a PostgreSQL database (its
// table created if missing) or a session directory. close releases what it holds (a
// database's connections).
func openStore(ctx context.Context, spec string, o storeOptions) (st quixote.IterableStore, closeStore func(), err error) {
	if IsDatabaseURL(spec) {
		// Lock waits end with the caller's context: the ordering's MaxWait for a
		// request, as with the lock directory.
		opts := []pgstore.Option{pgstore.WithMeta(sessionMeta(o.classes, o.userName)), pgstore.WithLockTimeout(0)}
		if o.lockWait != nil {
			opts = append(opts, pgstore.WithLockWaitHook(o.lockWait))
		}
		if o.admin {
			opts = append(opts, pgstore.WithLockConns(1))
		}
		db, err := pgstore.Open(ctx, spec, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("sessions database: %w", err)
		}
		return db, db.Close, nil
	}
	if spec == "" {
		return nil, nil, fmt.Errorf("the session directory must be named")
	}
	var opts []store.Option
	if o.create {
		// The parents as MkdirAll makes them; the session directory itself 0770,
		// with the parent's group and setgid when that group is shared: others
		// must not list the session ids, which are bearer tokens.
		if err := os.MkdirAll(filepath.Dir(spec), 0o777); err != nil {
			return nil, nil, fmt.Errorf("session directory: %w", err)
		}
		opts = append(opts, store.WithCreate(), store.WithDirMode(0o770))
	} else if fi, err := os.Stat(spec); err != nil {
		return nil, nil, fmt.Errorf("session directory: %w", err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("session directory %s: not a directory", spec)
	}
	if o.lockWait != nil {
		opts = append(opts, store.WithLockWaitHook(o.lockWait))
	}
	if o.fileMode != 0 {
		opts = append(opts, store.WithFileMode(o.fileMode))
	}
	if o.staging != "" {
		opts = append(opts, store.WithStagingDir(o.staging))
	}
	if o.inPlace {
		opts = append(opts, store.WithInPlace())
	}
	if o.admin {
		opts = append(opts, store.WithPartialWait(300*time.Millisecond), store.WithLockTimeout(5*time.Second))
	}
	dir, err := store.Open(spec, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("session directory: %w", err)
	}
	if shared, err := store.SharedWithGroup(spec); err == nil && shared && o.fileMode == 0 {
		// Python's files there must stay readable and writable by the group,
		// whatever the umask (0022 would make them 0640).
		if dir, err = store.Open(spec, append(opts, store.WithFileMode(0o660))...); err != nil {
			return nil, nil, fmt.Errorf("session directory: %w", err)
		}
	}
	return dir, func() {}, nil
}

// sessionMeta is what a database store keeps beside each session: its user's name
// (Config.UserName), its creation and access times, read as the Python store reads
// them.
func sessionMeta(classes []quixote.Class, userName func(*quixote.Session) string) func(id string, data []byte) pgstore.Meta {
	userName = userNamer(userName)
	return func(_ string, data []byte) pgstore.Meta {
		s, err := quixote.Decode(data, classes...)
		if err != nil {
			return pgstore.Meta{}
		}
		return pgstore.Meta{User: userName(s), Created: s.CreationTime(), Accessed: s.AccessTime()}
	}
}

// userNamer returns the rule that names a session's user: f, or by default
// quixote.Session.UserName.
func userNamer(f func(*quixote.Session) string) func(*quixote.Session) string {
	if f != nil {
		return f
	}
	return (*quixote.Session).UserName
}

// describeStore names a store for logs and /healthz: the directory's path, the
// database without its password, or the store's type.
func describeStore(st quixote.Store) string {
	switch s := st.(type) {
	case interface{ Dir() string }:
		return s.Dir()
	case fmt.Stringer:
		return s.String()
	}
	return fmt.Sprintf("%T", st)
}

// pingStore reports whether a store can serve now, for /healthz: a store with a
// Ping method (both of qxbridge's have one) is asked; another is taken as healthy.
func pingStore(ctx context.Context, st quixote.Store) error {
	if c, ok := st.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx) // a directory: create, replace, read and delete a file
	}
	if p, ok := st.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// checkStore checks at start-up that the gateway can use the session store
// (store.Directory.Check: create, replace, read and delete a file, with the
// directory's and the process's owner, group, mode and umask in the error), and
// warns when others can list or read the session directory: session ids are bearer
// tokens.
func checkStore(st quixote.Store, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pingStore(ctx, st); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	d, ok := st.(interface{ Dir() string })
	if !ok {
		return nil
	}
	fi, err := os.Stat(d.Dir())
	if err != nil {
		return fmt.Errorf("session directory: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o005 != 0 {
		log.Warn("others can list or read the session directory, and session ids are bearer tokens: chmod o-rwx it",
			"dir", d.Dir(), "mode", fmt.Sprintf("%04o", perm))
	}
	return nil
}

// modTime returns when a session was last saved, from a store that says (both of
// qxbridge's do); ok is false for one that does not.
func modTime(ctx context.Context, st quixote.Store, id string) (t time.Time, ok bool, err error) {
	m, ok := st.(interface {
		ModTime(context.Context, string) (time.Time, error)
	})
	if !ok {
		return time.Time{}, false, nil
	}
	t, err = m.ModTime(ctx, id)
	return t, true, err
}
