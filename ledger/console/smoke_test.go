package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryPageRenders: an officer with a reason gets every page.
func TestEveryPageRenders(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	for _, p := range []string{"/search?q=" + url.QueryEscape("微信"), "/conversation?c=cid-1&at=1", "/alerts", "/export", "/integrity", "/access"} {
		st, body := e.get(t, c, p)
		require.Equal(t, http.StatusOK, st, "%s: %s", p, body)
	}
}
