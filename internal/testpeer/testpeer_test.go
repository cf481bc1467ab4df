package testpeer

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTestdataLayout(t *testing.T) {
	for _, p := range []string{Testdata("session3", "session3-login.pkl"), Testdata("scgi", "nginx-scgi-request.bin"), PyScript("session3")} {
		_, err := os.Stat(p)
		require.NoError(t, err, p)
	}
}

func TestPythonRunsStandIns(t *testing.T) {
	cmd := PythonCmd(t, "standins_check.py")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "session3.Session.Session")
}

func TestOutputConcurrentWrites(t *testing.T) {
	var o Output
	done := make(chan struct{})
	for range 4 {
		go func() {
			for range 100 {
				o.Write([]byte("x"))
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	require.Len(t, o.String(), 400)
}
