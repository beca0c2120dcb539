package scan

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/ahocorasick"
)

// The benchmark corpus: 10,000 messages of about 100 bytes, about 40% of the bytes non-ASCII,
// a third of them carrying a term of the 10,000-term lexicon, shared by every sub-benchmark.
var benchCorpus = sync.OnceValues(func() ([][]byte, int64) {
	msgs := genMessages(42, 10_000, genTerms(1, 10_000), false)
	var n int64
	for _, m := range msgs {
		n += int64(len(m))
	}
	return msgs, n
})

// pairedSlice is how many messages of the corpus engine=paired times at a time (about 100 KB).
const pairedSlice = 1000

// built is an engine built once per sub-benchmark configuration, with its build time and the
// heap it retains.
type built struct {
	v         any
	buildTime time.Duration
	heap      uint64
}

var builtCache sync.Map

func buildOnce(key string, build func() any) *built {
	if v, ok := builtCache.Load(key); ok {
		return v.(*built)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	v := build()
	d := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	bt := &built{v: v, buildTime: d}
	if after.HeapAlloc > before.HeapAlloc {
		bt.heap = after.HeapAlloc - before.HeapAlloc
	}
	builtCache.Store(key, bt)
	return bt
}

func report(b *testing.B, bt *built) {
	b.ReportMetric(float64(bt.buildTime.Microseconds())/1000, "build-ms")
	b.ReportMetric(float64(bt.heap)/(1<<20), "heap-MiB")
}

// BenchmarkScan compares commseal's engine with github.com/cloudflare/ahocorasick over the same
// corpus, one call per message, at 100, 1,000 and 10,000 terms.
//
// norm=off: every rule exact, so both engines do case-sensitive byte matching.
// norm=on: full normalization. commseal folds inside the automaton; cloudflare is given what
// it would need to do the same work without offsets: the terms normalized at build time and
// each message normalized by Normalize before Match.
//
// engine=commseal scans the messages through ScanBatch (interleaved lanes); engine=commseal-1
// calls Scan once per message.
func BenchmarkScan(b *testing.B) {
	msgs, size := benchCorpus()
	// the shared fold tables are built once per process, not per engine
	foldTables()
	foldInfos()
	for _, n := range []int{100, 1000, 10_000} {
		terms := genTerms(1, n)
		for _, norm := range []bool{false, true} {
			mode := map[bool]string{false: "off", true: "on"}[norm]
			prefix := fmt.Sprintf("terms=%d/norm=%s", n, mode)
			buildCommseal := func() any {
				s, err := Compile(termsLexicon(terms, !norm))
				if err != nil {
					panic(err)
				}
				return s
			}
			buildCloudflare := func() any {
				ts := terms
				if norm {
					ts = make([]string, len(terms))
					for i, t := range terms {
						ts[i] = Normalize(t)
					}
				}
				return ahocorasick.NewStringMatcher(ts)
			}
			b.Run(prefix+"/engine=commseal", func(b *testing.B) {
				bt := buildOnce(prefix+"commseal", buildCommseal)
				s := bt.v.(*Scanner)
				b.SetBytes(size)
				found := 0
				for b.Loop() {
					s.ScanBatch(msgs, func(int, Finding) { found++ })
				}
				report(b, bt)
				b.ReportMetric(float64(found)/float64(b.N)/float64(len(msgs)), "findings/msg")
			})
			b.Run(prefix+"/engine=commseal-1", func(b *testing.B) {
				bt := buildOnce(prefix+"commseal", buildCommseal)
				s := bt.v.(*Scanner)
				b.SetBytes(size)
				var dst []Finding
				for b.Loop() {
					for _, m := range msgs {
						dst = s.AppendScan(dst[:0], m)
					}
				}
				report(b, bt)
			})
			// engine=paired runs, alternately so that all see the same machine load, on the
			// same messages (the same bytes) and the same n terms:
			//   - commseal ScanBatch (the batch figure, commseal-MB/s),
			//   - commseal AppendScan once per message (single-MB/s),
			//   - cloudflare MatchThreadSafe once per message (cloudflare-MB/s); with norm=on it
			//     is handed Normalize(message) and matches the normalized terms, the nearest it
			//     can come to the same work (it finds the term set, no offsets),
			//   - with norm=on only, cloudflare on the raw message bytes and the terms as
			//     written, no normalization at all (plain-MB/s): less work than commseal does,
			//     and the stricter baseline.
			// The corpus is taken in slices of pairedSlice messages, each slice run by every
			// engine in turn (the order rotating, and reversed every other slice, so that no
			// engine always follows the same one) on one locked thread, and each ratio is the
			// median over all slices of the ratio within the slice of the thread's CPU time
			// (threadCPUTime; wall time where that is not available): time spent waiting for a
			// core does not count, and a slice in which one engine lost its cache to a
			// neighbour moves the median by one place, not by its delay. It reports speedup
			// (batch over cloudflare), speedup-1 (single over cloudflare), batch-vs-single, and
			// with norm=on speedup-vs-plain (batch over un-normalized cloudflare). On a shared,
			// noisy machine these ratios are the figures to trust; the MB/s are wall-time
			// totals.
			b.Run(prefix+"/engine=paired", func(b *testing.B) {
				s := buildOnce(prefix+"commseal", buildCommseal).v.(*Scanner)
				m := buildOnce(prefix+"cloudflare", buildCloudflare).v.(*ahocorasick.Matcher)
				plain := buildOnce(fmt.Sprintf("terms=%d/norm=offcloudflare", n), func() any {
					return ahocorasick.NewStringMatcher(terms)
				}).v.(*ahocorasick.Matcher)
				const batch, single, cf, cfPlain = 0, 1, 2, 3
				var total [4]time.Duration
				var perSlice [][4]time.Duration
				var dst []Finding
				runtime.LockOSThread() // for threadCPUTime: the whole slice on one thread
				defer runtime.UnlockOSThread()
				var perSliceCPU [][4]time.Duration
				run := func(engine int, part [][]byte) (wall, cpu time.Duration) {
					c0, cpuOK := threadCPUTime()
					t0 := time.Now()
					switch engine {
					case batch:
						s.ScanBatch(part, func(int, Finding) {})
					case single:
						for _, msg := range part {
							dst = s.AppendScan(dst[:0], msg)
						}
					case cf:
						for _, msg := range part {
							if norm {
								msg = []byte(Normalize(string(msg)))
							}
							_ = m.MatchThreadSafe(msg)
						}
					case cfPlain:
						for _, msg := range part {
							_ = plain.MatchThreadSafe(msg)
						}
					}
					wall = time.Since(t0)
					cpu = wall
					if c1, ok := threadCPUTime(); ok && cpuOK {
						cpu = c1 - c0
					}
					return wall, cpu
				}
				engines := []int{batch, single, cf}
				if norm {
					engines = append(engines, cfPlain)
				}
				i := 0
				for b.Loop() {
					for lo := 0; lo < len(msgs); lo += pairedSlice {
						part := msgs[lo:min(lo+pairedSlice, len(msgs))]
						var d, c [4]time.Duration
						for k := range engines {
							// A rotation alone keeps the engines in one cyclic order, so each
							// would always run right after the same one, on the same slice:
							// single after batch, finding the table rows and the messages the
							// batch just loaded, batch after cloudflare, finding its own pushed
							// out. Every other slice runs the order backwards.
							n := len(engines)
							j := (i/2 + k) % n
							if i%2 == 1 {
								j = (i/2 + n - k) % n
							}
							e := engines[j]
							d[e], c[e] = run(e, part)
							total[e] += d[e]
						}
						perSlice = append(perSlice, d)
						perSliceCPU = append(perSliceCPU, c)
						i++
					}
				}
				iters := float64(i) * pairedSlice / float64(len(msgs))
				mbs := func(d time.Duration) float64 { return float64(size) * iters / d.Seconds() / 1e6 }
				ratio := func(num, den int) float64 {
					rs := make([]float64, len(perSliceCPU))
					for k, d := range perSliceCPU {
						rs[k] = d[num].Seconds() / d[den].Seconds()
					}
					slices.Sort(rs)
					return rs[len(rs)/2]
				}
				b.ReportMetric(mbs(total[batch]), "commseal-MB/s")
				b.ReportMetric(mbs(total[single]), "single-MB/s")
				b.ReportMetric(mbs(total[cf]), "cloudflare-MB/s")
				b.ReportMetric(ratio(cf, batch), "speedup")
				b.ReportMetric(ratio(cf, single), "speedup-1")
				b.ReportMetric(ratio(single, batch), "batch-vs-single")
				if norm {
					b.ReportMetric(mbs(total[cfPlain]), "plain-MB/s")
					b.ReportMetric(ratio(cfPlain, batch), "speedup-vs-plain")
				}
			})
			b.Run(prefix+"/engine=cloudflare", func(b *testing.B) {
				bt := buildOnce(prefix+"cloudflare", buildCloudflare)
				m := bt.v.(*ahocorasick.Matcher)
				b.SetBytes(size)
				found := 0
				for b.Loop() {
					for _, msg := range msgs {
						if norm {
							msg = []byte(Normalize(string(msg)))
						}
						found += len(m.MatchThreadSafe(msg))
					}
				}
				report(b, bt)
				b.ReportMetric(float64(found)/float64(b.N)/float64(len(msgs)), "findings/msg")
			})
		}
	}
}

// chatText joins generated messages (with the default lexicon's terms, disguised, in about one
// in three when terms is set) into one text of at least size bytes, with sep between them.
func chatText(seed uint64, size int, terms bool, sep string) []byte {
	var ts []string
	if terms {
		ts = allTerms(DefaultLexicon())
	}
	var out []byte
	for _, m := range genMessages(seed, size/90+1, ts, true) {
		out = append(append(out, m...), sep...)
	}
	return out
}

// adversarialSize is the size of each text of BenchmarkAdversarial but the huge one.
const adversarialSize = 1 << 20

var adversarialTexts = sync.OnceValue(func() map[string][]byte {
	return map[string][]byte{
		"plain":     chatText(61, adversarialSize, false, "\n"),
		"long-line": chatText(62, adversarialSize, true, " "),
		"huge":      chatText(63, 16*adversarialSize, true, "\n"),
	}
})

// BenchmarkAdversarial scans texts built to make a scan expensive: the adversarial cases of
// TestResolveWorkIsLinear (repeated terms, repeated and overlapping exclusions, near terms,
// spans covering most of the text) at about 1 MiB, a 1 MiB line of chat with no line break
// and one 16 MiB message. Each is scanned as one message, alternated in every iteration with
// 1 MiB of plain chat (no lexicon term put in) scanned by the same scanner, so both see the
// same machine load. It reports both speeds and slowdown, the plain speed over the
// adversarial one: the figure to compare across versions. plain is the baseline against
// itself, the noise floor.
func BenchmarkAdversarial(b *testing.B) {
	texts := adversarialTexts()
	def, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	type input struct {
		name string
		s    *Scanner
		text []byte
	}
	inputs := []input{{"plain", def, texts["plain"]}}
	for _, c := range adversarialCases {
		s, err := Compile(c.lex())
		if err != nil {
			b.Fatal(err)
		}
		unit := len(c.text(1000)) / 1000
		inputs = append(inputs, input{c.name, s, c.text(adversarialSize / unit)})
	}
	inputs = append(inputs, input{"long-line", def, texts["long-line"]}, input{"huge", def, texts["huge"]})
	plain := texts["plain"]
	for _, in := range inputs {
		b.Run("text="+in.name, func(b *testing.B) {
			var ta, tp time.Duration
			var dst []Finding
			found := 0
			for b.Loop() {
				t0 := time.Now()
				dst = in.s.AppendScan(dst[:0], in.text)
				ta += time.Since(t0)
				found = len(dst)
				t0 = time.Now()
				dst = in.s.AppendScan(dst[:0], plain)
				tp += time.Since(t0)
			}
			adv := float64(len(in.text)) * float64(b.N) / ta.Seconds() / 1e6
			base := float64(len(plain)) * float64(b.N) / tp.Seconds() / 1e6
			b.ReportMetric(adv, "MB/s")
			b.ReportMetric(base, "plain-MB/s")
			b.ReportMetric(base/adv, "slowdown")
			b.ReportMetric(float64(found), "findings")
		})
	}
}
