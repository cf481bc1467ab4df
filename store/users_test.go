package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The two-users setup: Python workers run as one user, Go as another, both members
// of a group that owns the (setgid) session directory; both have the usual umask
// 022. The users and the group need not exist: setpriv(1) switches to bare ids.
const (
	pythonUID = 64001
	goUID     = 64002
	sharedGID = 64000
)

// userOpEnv carries the operation of a "user" child: "check", "check0660", "load",
// "save SRC", "save0660 SRC" (0660: with WithFileMode(0660)); "saveinplace SRC"
// saves with WithInPlace.
const userOpEnv = "QXBRIDGE_STORE_TEST_OP"

// userOp is the child's main for "user DIR ID": one operation on the session
// directory DIR (created if missing, with WithDirMode(0770)); prints "ok" and the
// bytes' length, or the error.
func userOp(dir, id string) int {
	op, src, _ := strings.Cut(os.Getenv(userOpEnv), " ")
	opts := []Option{WithCreate(), WithDirMode(0o770)}
	if strings.HasSuffix(op, "inplace") {
		opts = append(opts, WithInPlace())
		op = strings.TrimSuffix(op, "inplace")
	}
	if strings.HasSuffix(op, "0660") {
		opts = append(opts, WithFileMode(0o660))
		op = strings.TrimSuffix(op, "0660")
	}
	d, err := Open(dir, opts...)
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	ctx := context.Background()
	switch op {
	case "check":
		err = d.Check(ctx)
	case "load":
		var data []byte
		data, err = d.Load(ctx, id)
		if err == nil {
			fmt.Println("loaded", sha(data))
		}
	case "save":
		var data []byte
		if data, err = os.ReadFile(src); err == nil {
			err = d.Save(ctx, id, data)
		}
	}
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	fmt.Println("ok")
	return 0
}

// asUser makes cmd run as uid, with uid as its group and sharedGID as a
// supplementary group (it inherits the test's umask).
func asUser(cmd *exec.Cmd, uid int) {
	id := strconv.Itoa(uid)
	cmd.Args = append([]string{"setpriv", "--reuid=" + id, "--regid=" + id, "--groups=" + strconv.Itoa(sharedGID),
		"--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/usr/bin/setpriv"
}

// TestTwoUsers: Python (the real session3) as one user and Go as another, in a
// shared setgid directory, both with umask 022, keep working on each other's
// sessions: Go keeps the group of the files it replaces and gives the group the
// previous owner's access; WithFileMode(0660) makes the sessions Go creates
// writable by Python, and Check says so when it is missing.
func TestTwoUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testpeer.Missing(t, "setpriv (util-linux)")
	}
	// Both users have the usual umask (the children inherit it). Not parallel.
	defer syscall.Umask(syscall.Umask(0o022))
	// A directory others can traverse, for the test binary and the sessions.
	base, err := os.MkdirTemp("", "qxbridge-two-users-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	bin := filepath.Join(base, "store.test")
	copyFile(t, os.Args[0], bin)
	shared := filepath.Join(base, "shared")
	require.NoError(t, os.Mkdir(shared, 0o775))
	require.NoError(t, os.Chown(shared, 0, sharedGID))
	require.NoError(t, os.Chmod(shared, 0o775|os.ModeSetgid))
	dir := filepath.Join(shared, "sessions")
	login := testpeer.Testdata("session3", "session3-login.pkl")
	cart := testpeer.Testdata("session3", "dictsession-cart.pkl")

	goOp := func(op, id string) string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$", dir, id)
		cmd.Env = append(os.Environ(), childEnv+"=user", userOpEnv+"="+op)
		asUser(cmd, goUID)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	pyOp := func(args ...string) (string, error) {
		t.Helper()
		cmd := peer(t, args...)
		asUser(cmd, pythonUID)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	owner := func(id string) [3]int {
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(filepath.Join(dir, id), &st))
		return [3]int{int(st.Uid), int(st.Gid), int(st.Mode & 0o7777)}
	}

	// Go creates the directory: 0770, setgid, the shared group.
	out := goOp("check", "x")
	assert.Contains(t, out, "set the file mode to 0660", "umask 022 leaves new files 0640")
	assert.Contains(t, out, "umask 0022")
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(dir, &st))
	assert.Equal(t, [3]int{goUID, sharedGID, 0o2770}, [3]int{int(st.Uid), int(st.Gid), int(st.Mode & 0o7777)})
	assert.Equal(t, "ok", goOp("check0660", "x"))

	// Python saves a session (0644 under umask 022); Go loads and replaces it.
	out, err = pyOp("save", dir, "py", login)
	require.NoError(t, err, out)
	assert.Equal(t, [3]int{pythonUID, sharedGID, 0o644}, owner("py"))
	assert.True(t, strings.HasPrefix(goOp("load", "py"), "loaded "))
	if nfsLocks {
		// On NFS an exclusive lock needs a descriptor open for writing, which Go's
		// user cannot have on a 0644 file of Python's: the save fails, and says
		// why. Python with umask 002 makes it group-writable.
		assert.Contains(t, goOp("save "+cart, "py"), "session file permissions forbid the save: permission denied: this process (uid 64002) may not open the session file")
		require.NoError(t, os.Chmod(filepath.Join(dir, "py"), 0o664))
	}
	assert.Equal(t, "ok", goOp("save "+cart, "py"))
	assert.Equal(t, [3]int{goUID, sharedGID, 0o660}, owner("py"), "group kept, and given the previous owner's access")
	// Python keeps reading and writing it.
	out, err = pyOp("load", dir, "py")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "session3.DictSession.DictSession "), out)
	out, err = pyOp("save", dir, "py", login)
	require.NoError(t, err, out)

	// A session Go creates with WithFileMode(0660): Python loads and saves it.
	assert.Equal(t, "ok", goOp("save0660 "+login, "go"))
	assert.Equal(t, [3]int{goUID, sharedGID, 0o660}, owner("go"))
	out, err = pyOp("load", dir, "go")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "session3.Session.Session "), out)
	out, err = pyOp("save", dir, "go", cart)
	require.NoError(t, err, out)

	// A directory Go's user cannot write to: Check says so, and by whom it is owned.
	locked := filepath.Join(base, "root-only")
	require.NoError(t, os.Mkdir(locked, 0o755))
	cmd := exec.Command(bin, "-test.run=^$", locked, "x")
	cmd.Env = append(os.Environ(), childEnv+"=user", userOpEnv+"=check")
	asUser(cmd, goUID)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
	assert.Contains(t, string(outb), "cannot create or remove files in the session directory: permission denied (directory owner uid 0, group 0, mode 0755; this process uid 64002, gid 64002, groups [64000]")

	// Without it (what Check warned of), Python can read it but not save it.
	assert.Equal(t, "ok", goOp("save "+login, "go2"))
	assert.Equal(t, [3]int{goUID, sharedGID, 0o640}, owner("go2"))
	_, err = pyOp("load", dir, "go2")
	require.NoError(t, err)
	_, err = pyOp("save", dir, "go2", cart)
	assert.Error(t, err, "group members cannot write a 0640 file")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
