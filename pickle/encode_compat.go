package pickle

// Names CPython's pickler writes differently from the names in the value, and names
// whose strings it creates anew each time.

// fixImports maps a Python 3 module and name to the Python 2 ones that CPython's
// pickler writes in GLOBAL below protocol 3 (fix_imports=True, the default), using
// the reverse tables of CPython's _compat_pickle: a (module, name) pair mapping first,
// else a module mapping.
func fixImports(module, name string) (string, string) {
	if mn, ok := reverseNameMapping[[2]string{module, name}]; ok {
		return mn[0], mn[1]
	}
	if m, ok := reverseImportMapping[module]; ok {
		return m, name
	}
	return module, name
}

// freshGlobalName reports whether CPython builds the qualified name string of g anew
// each time it pickles g, so that the name never shares a memo entry with an equal
// string. That is the case for classes written in C without a heap type (their
// __qualname__ is computed from tp_name on every access) and for built-in functions:
// everything in builtins and _codecs, the types of the datetime and decimal modules,
// and a few types of collections and functools. Module names, and the qualified names
// of classes and functions written in Python, are the same (often interned) string
// object every time, and are memoized by value like any other str.
func freshGlobalName(g Global) bool {
	switch g.Module {
	case "builtins", "_codecs", "datetime", "decimal":
		return true
	case "collections":
		return g.Name == "OrderedDict" || g.Name == "deque" || g.Name == "defaultdict"
	case "functools":
		return g.Name == "partial"
	}
	return false
}

// isBuiltinFunction reports whether the builtins name is a function rather than a
// class: the classes of builtins are the exceptions and warnings (capitalized) and the
// lower-case types below.
func isBuiltinFunction(name string) bool {
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] == '_') {
		return false
	}
	switch name {
	case "bool", "bytearray", "bytes", "classmethod", "complex", "dict", "enumerate", "filter",
		"float", "frozenset", "int", "list", "map", "memoryview", "object", "property", "range",
		"reversed", "set", "slice", "staticmethod", "str", "super", "tuple", "type", "zip":
		return false
	}
	return true
}

// reverseNameMapping is _compat_pickle.REVERSE_NAME_MAPPING (CPython 3.11).
var reverseNameMapping = map[[2]string][2]string{
	{"_functools", "reduce"}:                           {"__builtin__", "reduce"},
	{"_socket", "socket"}:                              {"socket", "_socketobject"},
	{"builtins", "ArithmeticError"}:                    {"exceptions", "ArithmeticError"},
	{"builtins", "AssertionError"}:                     {"exceptions", "AssertionError"},
	{"builtins", "AttributeError"}:                     {"exceptions", "AttributeError"},
	{"builtins", "BaseException"}:                      {"exceptions", "BaseException"},
	{"builtins", "BrokenPipeError"}:                    {"exceptions", "OSError"},
	{"builtins", "BufferError"}:                        {"exceptions", "BufferError"},
	{"builtins", "BytesWarning"}:                       {"exceptions", "BytesWarning"},
	{"builtins", "ChildProcessError"}:                  {"exceptions", "OSError"},
	{"builtins", "ConnectionAbortedError"}:             {"exceptions", "OSError"},
	{"builtins", "ConnectionError"}:                    {"exceptions", "OSError"},
	{"builtins", "ConnectionRefusedError"}:             {"exceptions", "OSError"},
	{"builtins", "ConnectionResetError"}:               {"exceptions", "OSError"},
	{"builtins", "DeprecationWarning"}:                 {"exceptions", "DeprecationWarning"},
	{"builtins", "EOFError"}:                           {"exceptions", "EOFError"},
	{"builtins", "EnvironmentError"}:                   {"exceptions", "EnvironmentError"},
	{"builtins", "Exception"}:                          {"exceptions", "Exception"},
	{"builtins", "FileExistsError"}:                    {"exceptions", "OSError"},
	{"builtins", "FileNotFoundError"}:                  {"exceptions", "OSError"},
	{"builtins", "FloatingPointError"}:                 {"exceptions", "FloatingPointError"},
	{"builtins", "FutureWarning"}:                      {"exceptions", "FutureWarning"},
	{"builtins", "GeneratorExit"}:                      {"exceptions", "GeneratorExit"},
	{"builtins", "IOError"}:                            {"exceptions", "IOError"},
	{"builtins", "ImportError"}:                        {"exceptions", "ImportError"},
	{"builtins", "ImportWarning"}:                      {"exceptions", "ImportWarning"},
	{"builtins", "IndentationError"}:                   {"exceptions", "IndentationError"},
	{"builtins", "IndexError"}:                         {"exceptions", "IndexError"},
	{"builtins", "InterruptedError"}:                   {"exceptions", "OSError"},
	{"builtins", "IsADirectoryError"}:                  {"exceptions", "OSError"},
	{"builtins", "KeyError"}:                           {"exceptions", "KeyError"},
	{"builtins", "KeyboardInterrupt"}:                  {"exceptions", "KeyboardInterrupt"},
	{"builtins", "LookupError"}:                        {"exceptions", "LookupError"},
	{"builtins", "MemoryError"}:                        {"exceptions", "MemoryError"},
	{"builtins", "ModuleNotFoundError"}:                {"exceptions", "ImportError"},
	{"builtins", "NameError"}:                          {"exceptions", "NameError"},
	{"builtins", "NotADirectoryError"}:                 {"exceptions", "OSError"},
	{"builtins", "NotImplementedError"}:                {"exceptions", "NotImplementedError"},
	{"builtins", "OSError"}:                            {"exceptions", "OSError"},
	{"builtins", "OverflowError"}:                      {"exceptions", "OverflowError"},
	{"builtins", "PendingDeprecationWarning"}:          {"exceptions", "PendingDeprecationWarning"},
	{"builtins", "PermissionError"}:                    {"exceptions", "OSError"},
	{"builtins", "ProcessLookupError"}:                 {"exceptions", "OSError"},
	{"builtins", "ReferenceError"}:                     {"exceptions", "ReferenceError"},
	{"builtins", "RuntimeError"}:                       {"exceptions", "RuntimeError"},
	{"builtins", "RuntimeWarning"}:                     {"exceptions", "RuntimeWarning"},
	{"builtins", "StopIteration"}:                      {"exceptions", "StopIteration"},
	{"builtins", "SyntaxError"}:                        {"exceptions", "SyntaxError"},
	{"builtins", "SyntaxWarning"}:                      {"exceptions", "SyntaxWarning"},
	{"builtins", "SystemError"}:                        {"exceptions", "SystemError"},
	{"builtins", "SystemExit"}:                         {"exceptions", "SystemExit"},
	{"builtins", "TabError"}:                           {"exceptions", "TabError"},
	{"builtins", "TimeoutError"}:                       {"exceptions", "OSError"},
	{"builtins", "TypeError"}:                          {"exceptions", "TypeError"},
	{"builtins", "UnboundLocalError"}:                  {"exceptions", "UnboundLocalError"},
	{"builtins", "UnicodeDecodeError"}:                 {"exceptions", "UnicodeDecodeError"},
	{"builtins", "UnicodeEncodeError"}:                 {"exceptions", "UnicodeEncodeError"},
	{"builtins", "UnicodeError"}:                       {"exceptions", "UnicodeError"},
	{"builtins", "UnicodeTranslateError"}:              {"exceptions", "UnicodeTranslateError"},
	{"builtins", "UnicodeWarning"}:                     {"exceptions", "UnicodeWarning"},
	{"builtins", "UserWarning"}:                        {"exceptions", "UserWarning"},
	{"builtins", "ValueError"}:                         {"exceptions", "ValueError"},
	{"builtins", "Warning"}:                            {"exceptions", "Warning"},
	{"builtins", "ZeroDivisionError"}:                  {"exceptions", "ZeroDivisionError"},
	{"builtins", "chr"}:                                {"__builtin__", "unichr"},
	{"builtins", "filter"}:                             {"itertools", "ifilter"},
	{"builtins", "int"}:                                {"__builtin__", "long"},
	{"builtins", "map"}:                                {"itertools", "imap"},
	{"builtins", "range"}:                              {"__builtin__", "xrange"},
	{"builtins", "str"}:                                {"__builtin__", "unicode"},
	{"builtins", "zip"}:                                {"itertools", "izip"},
	{"collections", "UserDict"}:                        {"UserDict", "IterableUserDict"},
	{"collections", "UserList"}:                        {"UserList", "UserList"},
	{"collections", "UserString"}:                      {"UserString", "UserString"},
	{"dbm", "whichdb"}:                                 {"whichdb", "whichdb"},
	{"functools", "reduce"}:                            {"__builtin__", "reduce"},
	{"http.server", "CGIHTTPRequestHandler"}:           {"CGIHTTPServer", "CGIHTTPRequestHandler"},
	{"http.server", "SimpleHTTPRequestHandler"}:        {"SimpleHTTPServer", "SimpleHTTPRequestHandler"},
	{"itertools", "filterfalse"}:                       {"itertools", "ifilterfalse"},
	{"itertools", "zip_longest"}:                       {"itertools", "izip_longest"},
	{"multiprocessing.connection", "Connection"}:       {"_multiprocessing", "Connection"},
	{"multiprocessing.context", "AuthenticationError"}: {"multiprocessing", "AuthenticationError"},
	{"multiprocessing.context", "BufferTooShort"}:      {"multiprocessing", "BufferTooShort"},
	{"multiprocessing.context", "Process"}:             {"multiprocessing.process", "Process"},
	{"multiprocessing.context", "ProcessError"}:        {"multiprocessing", "ProcessError"},
	{"multiprocessing.context", "TimeoutError"}:        {"multiprocessing", "TimeoutError"},
	{"multiprocessing.popen_fork", "Popen"}:            {"multiprocessing.forking", "Popen"},
	{"socket", "fromfd"}:                               {"_socket", "fromfd"},
	{"sys", "intern"}:                                  {"__builtin__", "intern"},
	{"tkinter.filedialog", "FileDialog"}:               {"FileDialog", "FileDialog"},
	{"tkinter.filedialog", "LoadFileDialog"}:           {"FileDialog", "LoadFileDialog"},
	{"tkinter.filedialog", "SaveFileDialog"}:           {"FileDialog", "SaveFileDialog"},
	{"tkinter.simpledialog", "SimpleDialog"}:           {"SimpleDialog", "SimpleDialog"},
	{"urllib.error", "ContentTooShortError"}:           {"urllib", "ContentTooShortError"},
	{"urllib.error", "HTTPError"}:                      {"urllib2", "HTTPError"},
	{"urllib.error", "URLError"}:                       {"urllib2", "URLError"},
	{"urllib.parse", "quote"}:                          {"urllib", "quote"},
	{"urllib.parse", "quote_plus"}:                     {"urllib", "quote_plus"},
	{"urllib.parse", "unquote"}:                        {"urllib", "unquote"},
	{"urllib.parse", "unquote_plus"}:                   {"urllib", "unquote_plus"},
	{"urllib.parse", "urlencode"}:                      {"urllib", "urlencode"},
	{"urllib.request", "getproxies"}:                   {"urllib", "getproxies"},
	{"urllib.request", "pathname2url"}:                 {"urllib", "pathname2url"},
	{"urllib.request", "url2pathname"}:                 {"urllib", "url2pathname"},
	{"urllib.request", "urlcleanup"}:                   {"urllib", "urlcleanup"},
	{"urllib.request", "urlopen"}:                      {"urllib", "urlopen"},
	{"urllib.request", "urlretrieve"}:                  {"urllib", "urlretrieve"},
	{"xmlrpc.server", "DocCGIXMLRPCRequestHandler"}:    {"DocXMLRPCServer", "DocCGIXMLRPCRequestHandler"},
	{"xmlrpc.server", "DocXMLRPCRequestHandler"}:       {"DocXMLRPCServer", "DocXMLRPCRequestHandler"},
	{"xmlrpc.server", "DocXMLRPCServer"}:               {"DocXMLRPCServer", "DocXMLRPCServer"},
	{"xmlrpc.server", "ServerHTMLDoc"}:                 {"DocXMLRPCServer", "ServerHTMLDoc"},
	{"xmlrpc.server", "XMLRPCDocGenerator"}:            {"DocXMLRPCServer", "XMLRPCDocGenerator"},
}

// reverseImportMapping is _compat_pickle.REVERSE_IMPORT_MAPPING (CPython 3.11).
var reverseImportMapping = map[string]string{
	"_bz2":                 "bz2",
	"_dbm":                 "dbm",
	"_dummy_thread":        "dummy_thread",
	"_functools":           "functools",
	"_gdbm":                "gdbm",
	"_markupbase":          "markupbase",
	"_pickle":              "pickle",
	"_thread":              "thread",
	"builtins":             "__builtin__",
	"collections.abc":      "_abcoll",
	"configparser":         "ConfigParser",
	"copyreg":              "copy_reg",
	"dbm":                  "anydbm",
	"dbm.bsd":              "dbhash",
	"dbm.dumb":             "dumbdbm",
	"dbm.gnu":              "gdbm",
	"dbm.ndbm":             "dbm",
	"html.entities":        "htmlentitydefs",
	"html.parser":          "HTMLParser",
	"http.client":          "httplib",
	"http.cookiejar":       "cookielib",
	"http.cookies":         "Cookie",
	"http.server":          "BaseHTTPServer",
	"queue":                "Queue",
	"reprlib":              "repr",
	"socketserver":         "SocketServer",
	"subprocess":           "commands",
	"test.support":         "test.test_support",
	"tkinter":              "Tkinter",
	"tkinter.colorchooser": "tkColorChooser",
	"tkinter.commondialog": "tkCommonDialog",
	"tkinter.constants":    "Tkconstants",
	"tkinter.dialog":       "Dialog",
	"tkinter.dnd":          "Tkdnd",
	"tkinter.filedialog":   "tkFileDialog",
	"tkinter.font":         "tkFont",
	"tkinter.messagebox":   "tkMessageBox",
	"tkinter.scrolledtext": "ScrolledText",
	"tkinter.simpledialog": "tkSimpleDialog",
	"tkinter.tix":          "Tix",
	"tkinter.ttk":          "ttk",
	"urllib.parse":         "urlparse",
	"urllib.request":       "urllib2",
	"urllib.robotparser":   "robotparser",
	"winreg":               "_winreg",
	"xmlrpc.client":        "xmlrpclib",
	"xmlrpc.server":        "SimpleXMLRPCServer",
}
