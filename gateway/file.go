package gateway

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/qxbridge/qxbridge/quixote"
)

// fileConfig is the TOML form of Config.
type fileConfig struct {
	Listen struct {
		HTTP          string `toml:"http"`
		SCGI          string `toml:"scgi"`
		Metrics       string `toml:"metrics"`
		SocketMode    string `toml:"socket_mode"`
		SCGIHalfClose bool   `toml:"scgi_half_close"`
	} `toml:"listen"`
	Sessions struct {
		Dir         string        `toml:"dir"`
		StagingDir  string        `toml:"staging_dir"`
		InPlace     bool          `toml:"in_place"`
		MaxIdle     time.Duration `toml:"max_idle"`
		IdleTimeout time.Duration `toml:"idle_timeout"`
		FileMode    string        `toml:"file_mode"`
		MaxLifetime time.Duration `toml:"max_lifetime"`
		NewClass    string        `toml:"new_class"`
		Classes     []struct {
			Name          string `toml:"name"`
			Kind          string `toml:"kind"`
			MaxFormTokens int    `toml:"max_form_tokens"`
		} `toml:"class"`
	} `toml:"sessions"`
	Cookie struct {
		Name     string `toml:"name"`
		Path     string `toml:"path"`
		Domain   string `toml:"domain"`
		Secure   bool   `toml:"secure"`
		HttpOnly bool   `toml:"httponly"`
		SameSite string `toml:"samesite"`
	} `toml:"cookie"`
	Ordering struct {
		Off      bool          `toml:"off"`
		MaxQueue int           `toml:"max_queue"`
		MaxWait  time.Duration `toml:"max_wait"`
		LockDir  string        `toml:"lock_dir"`
	} `toml:"ordering"`
	Limits struct {
		ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
		BackendMaxConns int           `toml:"backend_max_conns"`
		BackendTimeout  time.Duration `toml:"backend_timeout"`
		BackendWarm     int           `toml:"backend_warm_conns"`
		DrainTimeout    time.Duration `toml:"backend_drain_timeout"`
		DrainBytes      int64         `toml:"backend_drain_bytes"`
	} `toml:"limits"`
	Log struct {
		Format string `toml:"format"`
		Level  string `toml:"level"`
	} `toml:"log"`
	Cutover struct {
		SafeMethods    []string `toml:"safe_methods"`
		RolloutCookie  string   `toml:"rollout_cookie"`
		OverrideHeader string   `toml:"override_header"`
		OverrideCookie string   `toml:"override_cookie"`
		OverrideToken  string   `toml:"override_token"`
		CompareHeaders []string `toml:"compare_headers"`
		Replace        []struct {
			Pattern string `toml:"pattern"`
			With    string `toml:"with"`
		} `toml:"replace"`
		IgnoreSpace bool `toml:"ignore_space"`
		MaxShadows  int  `toml:"max_shadows"`
		Samples     int  `toml:"samples"`
		MaxBody     int  `toml:"max_body"`
	} `toml:"cutover"`
	Pools  map[string]filePool `toml:"pool"`
	Routes []fileRoute         `toml:"route"`
	Mounts []fileRoute         `toml:"mount"`
}

type filePool struct {
	Addresses []string      `toml:"addresses"`
	MaxConns  int           `toml:"max_conns"`
	Timeout   time.Duration `toml:"timeout"`
	WarmConns int           `toml:"warm_conns"`
}

type fileRoute struct {
	Prefix    string `toml:"prefix"`
	Target    string `toml:"target"`
	Mount     bool   `toml:"mount"`
	Unordered bool   `toml:"unordered"`

	Candidate string  `toml:"candidate"`
	Rollout   float64 `toml:"rollout"`
	Shadow    bool    `toml:"shadow"`
	Fallback  bool    `toml:"fallback"`
}

// loadFile applies the configuration file at path to cfg. It reports whether the
// file has routes. On error cfg may be partly changed; callers work on a copy.
func loadFile(path string, cfg *Config) (hasRoutes bool, err error) {
	var f fileConfig
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return false, fmt.Errorf("configuration file %s: %w", path, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		return false, fmt.Errorf("configuration file %s: unknown key %s", path, strings.Join(names, ", "))
	}
	wrap := func(err error) error { return fmt.Errorf("configuration file %s: %w", path, err) }
	def := md.IsDefined
	set := func(dst *string, v string, key ...string) {
		if def(key...) {
			*dst = v
		}
	}
	set(&cfg.HTTPAddr, f.Listen.HTTP, "listen", "http")
	set(&cfg.SCGIAddr, f.Listen.SCGI, "listen", "scgi")
	set(&cfg.MetricsAddr, f.Listen.Metrics, "listen", "metrics")
	if def("listen", "scgi_half_close") {
		cfg.SCGIHalfClose = f.Listen.SCGIHalfClose
	}
	if def("listen", "socket_mode") {
		if cfg.SocketMode, err = parseMode(f.Listen.SocketMode); err != nil {
			return false, wrap(err)
		}
	}
	set(&cfg.SessionsDir, f.Sessions.Dir, "sessions", "dir")
	set(&cfg.StagingDir, f.Sessions.StagingDir, "sessions", "staging_dir")
	if def("sessions", "in_place") {
		cfg.InPlace = f.Sessions.InPlace
	}
	if def("sessions", "max_idle") {
		cfg.MaxIdle = f.Sessions.MaxIdle
	}
	if def("sessions", "file_mode") {
		if cfg.FileMode, err = parseMode(f.Sessions.FileMode); err != nil {
			return false, wrap(err)
		}
	}
	if def("sessions", "idle_timeout") {
		cfg.IdleTimeout = f.Sessions.IdleTimeout
	}
	if def("sessions", "max_lifetime") {
		cfg.MaxLifetime = f.Sessions.MaxLifetime
	}
	for i, fc := range f.Sessions.Classes {
		c, err := parseClass(fc.Name, fc.Kind)
		if err != nil {
			return false, wrap(fmt.Errorf("sessions.class %d: %w", i+1, err))
		}
		if fc.MaxFormTokens < 0 {
			return false, wrap(fmt.Errorf("sessions.class %s: max_form_tokens must not be negative", fc.Name))
		}
		c.MaxFormTokens = fc.MaxFormTokens
		cfg.Classes = mergeClass(cfg.Classes, c)
	}
	if def("sessions", "new_class") {
		if cfg.NewClass, err = parseClass(f.Sessions.NewClass, ""); err != nil {
			return false, wrap(err)
		}
	}
	set(&cfg.Cookie.Name, f.Cookie.Name, "cookie", "name")
	set(&cfg.Cookie.Path, f.Cookie.Path, "cookie", "path")
	set(&cfg.Cookie.Domain, f.Cookie.Domain, "cookie", "domain")
	if def("cookie", "secure") {
		cfg.Cookie.Secure = f.Cookie.Secure
	}
	if def("cookie", "httponly") {
		cfg.Cookie.HttpOnly = f.Cookie.HttpOnly
	}
	if def("cookie", "samesite") {
		if cfg.Cookie.SameSite, err = parseSameSite(f.Cookie.SameSite); err != nil {
			return false, wrap(err)
		}
	}
	if def("ordering", "off") {
		cfg.Ordering.Disabled = f.Ordering.Off
	}
	if def("ordering", "max_queue") {
		cfg.Ordering.MaxQueue = f.Ordering.MaxQueue
	}
	if def("ordering", "max_wait") {
		cfg.Ordering.MaxWait = f.Ordering.MaxWait
	}
	set(&cfg.Ordering.LockDir, f.Ordering.LockDir, "ordering", "lock_dir")
	if def("limits", "shutdown_timeout") {
		cfg.ShutdownTimeout = f.Limits.ShutdownTimeout
	}
	if def("limits", "backend_max_conns") {
		cfg.BackendMaxConns = f.Limits.BackendMaxConns
	}
	if def("limits", "backend_timeout") {
		cfg.BackendTimeout = f.Limits.BackendTimeout
	}
	if def("limits", "backend_warm_conns") {
		cfg.BackendWarmConns = f.Limits.BackendWarm
	}
	if def("limits", "backend_drain_timeout") {
		cfg.BackendDrainTimeout = f.Limits.DrainTimeout
	}
	if def("limits", "backend_drain_bytes") {
		cfg.BackendDrainBytes = f.Limits.DrainBytes
	}
	set(&cfg.LogFormat, f.Log.Format, "log", "format")
	if def("log", "level") {
		if cfg.LogLevel, err = parseLogLevel(f.Log.Level); err != nil {
			return false, wrap(err)
		}
	}
	cut := &cfg.Cutover
	fc := &f.Cutover
	if def("cutover", "safe_methods") {
		cut.SafeMethods = fc.SafeMethods
	}
	set(&cut.RolloutCookie, fc.RolloutCookie, "cutover", "rollout_cookie")
	set(&cut.OverrideHeader, fc.OverrideHeader, "cutover", "override_header")
	set(&cut.OverrideCookie, fc.OverrideCookie, "cutover", "override_cookie")
	set(&cut.OverrideToken, fc.OverrideToken, "cutover", "override_token")
	if def("cutover", "compare_headers") {
		cut.CompareHeaders = fc.CompareHeaders
	}
	if def("cutover", "replace") {
		cut.Replace = nil
		for _, r := range fc.Replace {
			cut.Replace = append(cut.Replace, Replace(r))
		}
	}
	if def("cutover", "ignore_space") {
		cut.IgnoreSpace = fc.IgnoreSpace
	}
	for _, n := range []struct {
		dst *int
		v   int
		key string
	}{{&cut.MaxShadows, fc.MaxShadows, "max_shadows"}, {&cut.Samples, fc.Samples, "samples"}, {&cut.MaxBody, fc.MaxBody, "max_body"}} {
		if def("cutover", n.key) {
			*n.dst = n.v
		}
	}
	if len(f.Pools) > 0 {
		if cfg.Pools == nil {
			cfg.Pools = map[string]Pool{}
		}
		for name, p := range f.Pools {
			cfg.Pools[name] = Pool{Addresses: p.Addresses, MaxConns: p.MaxConns, Timeout: p.Timeout, WarmConns: p.WarmConns}
		}
	}
	if len(f.Routes)+len(f.Mounts) > 0 {
		cfg.Routes = nil
		for _, r := range f.Routes {
			cfg.Routes = append(cfg.Routes, Route(r))
		}
		for _, r := range f.Mounts {
			r.Mount = true
			cfg.Routes = append(cfg.Routes, Route(r))
		}
		for _, r := range cfg.Routes {
			if err := r.check(); err != nil {
				return false, wrap(err)
			}
		}
		hasRoutes = true
	}
	return hasRoutes, nil
}

// mergeClass adds c to classes, or replaces the description of the same class,
// keeping a HasInfo that code gave it (a file cannot express one).
func mergeClass(classes []quixote.Class, c quixote.Class) []quixote.Class {
	for i, d := range classes {
		if d.Module == c.Module && d.Name == c.Name {
			if c.HasInfo == nil {
				c.HasInfo = d.HasInfo
			}
			classes = slices.Clone(classes)
			classes[i] = c
			return classes
		}
	}
	return append(slices.Clone(classes), c)
}

// Pool is a named pool of Python workers, which routes name as their target.
type Pool struct {
	// Addresses are the workers: host:port or unix:/path.
	Addresses []string
	// MaxConns, Timeout and WarmConns override Config.BackendMaxConns,
	// Config.BackendTimeout and Config.BackendWarmConns for this pool when positive.
	MaxConns  int
	Timeout   time.Duration
	WarmConns int

	// The drain limits every pool takes from Config (BackendDrainTimeout,
	// BackendDrainBytes).
	drainTimeout time.Duration
	drainBytes   int64
}

// check validates a pool's addresses and limits.
func (p Pool) check(name string) error {
	if !handlerName.MatchString(name) {
		return fmt.Errorf("pool %q: a name is letters, digits, '_', '.' and '-'", name)
	}
	if len(p.Addresses) == 0 {
		return fmt.Errorf("pool %s: no addresses", name)
	}
	for _, a := range p.Addresses {
		if path, ok := strings.CutPrefix(a, "unix:"); ok {
			if !strings.HasPrefix(path, "/") {
				return fmt.Errorf("pool %s: %q: want unix:/absolute/path", name, a)
			}
			continue
		}
		if _, err := parseTarget("scgi://" + a); err != nil {
			return fmt.Errorf("pool %s: %q is not host:port or unix:/path", name, a)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("pool %s: %q: %w", name, a, err)
		}
	}
	if p.MaxConns < 0 || p.Timeout < 0 || p.WarmConns < 0 {
		return fmt.Errorf("pool %s: limits must not be negative", name)
	}
	return nil
}
