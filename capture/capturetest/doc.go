// Package capturetest is the kit for writing and testing capture sources, whatever the
// platform: an in-memory Sink that behaves like a ledger as far as a source can tell (it
// validates, deduplicates, remembers commit times, and fails or stalls on demand through its
// Before hook), and RunSource, the conformance suite for capture.Source implementations, in the
// manner of testing/fstest.TestFS.
//
// A source author adapts the platform's test gateway to Upstream (dingtalktest.NewUpstream
// does it for DingTalk's Stream mode) and runs the suite from a test:
//
//	func TestSourceConformance(t *testing.T) {
//		capturetest.RunSource(t, func(t *testing.T) (capture.Source, capturetest.Upstream) {
//			g := dingtalktest.New(dingtalktest.Config{MaxRedeliveries: -1, RedeliverAfter: time.Hour})
//			t.Cleanup(g.Close)
//			src, err := dingtalk.NewSource(dingtalk.Options{ /* pointed at g */ })
//			if err != nil {
//				t.Fatal(err)
//			}
//			return src, dingtalktest.NewUpstream(g)
//		})
//	}
//
// Only tests import this package.
package capturetest
