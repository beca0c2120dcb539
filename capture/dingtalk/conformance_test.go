package dingtalk_test

import (
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

// TestSourceConformance checks dingtalk.Source against the capture.Source contract with
// capturetest.RunSource, through the official Stream SDK connected to a local gateway.
func TestSourceConformance(t *testing.T) {
	capturetest.RunSource(t, func(t *testing.T) (capture.Source, capturetest.Upstream) {
		g := dingtalktest.New(dingtalktest.Config{MaxRedeliveries: -1, RedeliverAfter: time.Hour})
		t.Cleanup(g.Close) // after the suite has stopped the source
		src, err := dingtalk.NewSource(fastOptions(t, g))
		require.NoError(t, err)
		return src, dingtalktest.NewUpstream(g)
	})
}
