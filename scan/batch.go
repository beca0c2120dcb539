package scan

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// A normalizing batch scan works in two phases over a chunk of messages.
//
// Classify: each message is turned into its class stream (classify), the classes the
// automaton steps on, as scanNorm would step: folding, skipping and symbol codes in one pass
// that carries nothing from one rune to the next, so it runs at the processor's full width
// instead of waiting on the automaton. The stream is written straight into the least filled
// of the lanes, followed by a classNone separator, which returns the automaton to the root, so
// that no match spans two messages.
//
// Walk: the eight lanes are stored interleaved (byte 8k+j is lane j's class at step k), so a
// step of all eight is eight adjacent bytes, and the eight state chains, being independent,
// overlap their table loads. (Eight states stay in registers; sixteen were spilled to the
// stack on every step and were no faster.) Lanes shorter than the longest are padded with classNone, which keeps
// them at the root (a row that stays in cache), so all eight run the whole chunk in lockstep
// with no per-message bookkeeping in the loop.
//
// A hit is recorded at its position in its lane; after the walk each message's hits are
// shifted to its own stream and mapped to offsets in its text (mapEnds), and handed over in
// message order. A message too long for a lane is scanned by itself with scanNorm.
const (
	batchLanes = 8
	// batchLaneSteps is the length of each lane in a chunk: 8 lanes of 16 KiB, 128 KiB of
	// classes, some 1,500 messages of chat. Between two walks, classifying and reporting
	// push the automaton's rows out of the cache, which the next walk reloads. In
	// BenchmarkScan's paired runs at 10,000 terms, batch-vs-single was 1.07-1.31 (median 1.10,
	// 4 runs) with 4 KiB lanes and 1.11-1.66 (median 1.43, 8 runs) with 16 KiB; 64 KiB lanes
	// did no better.
	batchLaneSteps = 16384
	// batchAlone is the message length from which a message is scanned by itself: its stream
	// (see maxClasses) always fits in a lane.
	batchAlone = batchLaneSteps / 2
)

// normBatch is the working memory of a normalizing batch scan, kept in the scratch pool.
type normBatch struct {
	ib     []byte // interleaved lanes: ib[8k+j] is lane j's class at step k
	fill   [batchLanes]int
	placed []placed // the chunk's messages, in message order
	hits   [batchLanes][]hit
	one    []hit // hits of a message scanned by itself
}

// placed is a message of a chunk: its stream occupies steps [start, end) of its lane.
type placed struct {
	msg        int
	lane       int
	start, end int
}

// scanNormBatch scans msgs with a normalizing automaton and calls done, in message order, for
// each message with hits, with hits whose ends are offsets in the message's text, as scanNorm
// gives them.
func (a *automaton) scanNormBatch(msgs [][]byte, nb *normBatch, done func(msg int, hits []hit)) {
	if nb.ib == nil {
		nb.ib = make([]byte, batchLanes*batchLaneSteps)
	}
	nb.reset()
	for i, text := range msgs {
		if len(text) == 0 {
			continue
		}
		if len(text) > batchAlone {
			a.flush(msgs, nb, done)
			if hits := a.scanNorm(text, nb.one[:0]); len(hits) > 0 {
				done(i, hits)
				nb.one = hits[:0]
			}
			continue
		}
		j := 0
		for k := 1; k < batchLanes; k++ {
			if nb.fill[k] < nb.fill[j] {
				j = k
			}
		}
		if nb.fill[j]+maxClasses(len(text))+3 > batchLaneSteps { // classify's room
			a.flush(msgs, nb, done)
			j = 0
		}
		start := nb.fill[j]
		n := a.classify(nb.ib[start*batchLanes+j:], text)
		if n == 0 {
			continue // nothing normalization keeps
		}
		end := start + n
		nb.fill[j] = end + 1 // the separator, classNone
		nb.placed = append(nb.placed, placed{msg: i, lane: j, start: start, end: end})
	}
	a.flush(msgs, nb, done)
}

// reset empties the lanes: every class classNone.
func (nb *normBatch) reset() {
	steps := 0
	for j := range nb.fill {
		steps = max(steps, nb.fill[j])
		nb.fill[j] = 0
	}
	clear(nb.ib[:steps*batchLanes])
	nb.placed = nb.placed[:0]
	for j := range nb.hits {
		nb.hits[j] = nb.hits[j][:0]
	}
}

// flush walks the chunk in the lanes, hands over the hits of its messages and empties the
// lanes.
func (a *automaton) flush(msgs [][]byte, nb *normBatch, done func(msg int, hits []hit)) {
	if len(nb.placed) == 0 {
		return
	}
	steps := 0
	for _, n := range nb.fill {
		steps = max(steps, n)
	}
	a.walkLanes(nb.ib[:steps*batchLanes], &nb.hits)
	var next [batchLanes]int
	for _, p := range nb.placed {
		hs := nb.hits[p.lane][next[p.lane]:]
		n := 0
		for n < len(hs) && hs[n].end <= p.end {
			hs[n].end -= p.start
			n++
		}
		next[p.lane] += n
		if n > 0 {
			hs = hs[:n]
			a.mapEnds(msgs[p.msg], hs)
			done(p.msg, hs)
		}
	}
	nb.reset()
}

// walkLanes runs the automaton over the interleaved lanes of ib, all starting at the root,
// and appends to hits[j] a hit for every state with output that lane j reaches, its end the
// number of lane j's classes consumed.
func (a *automaton) walkLanes(ib []byte, hits *[batchLanes][]hit) {
	var st [batchLanes]uint32
	steps := len(ib) / batchLanes
	for k := 0; k < steps; {
		k = a.walkDense(ib, k, &st)
		// Record the matches; while a lane is in a sparse state (no dense row), step all
		// lanes one class at a time.
		for {
			sparse := false
			for j, v := range st {
				if v&flagMatch != 0 {
					hits[j] = append(hits[j], hit{a.stateNum(v), k})
					v &^= flagMatch
					st[j] = v
				}
				if v >= specialMin {
					sparse = true
				}
			}
			if !sparse || k >= steps {
				break
			}
			for j, v := range st {
				c := uint32(ib[k*batchLanes+j])
				if v >= specialMin {
					st[j] = a.slowStep(v, c)
				} else {
					st[j] = a.trans[v+c]
				}
			}
			k++
		}
	}
}

// walkDense steps the lanes from step k, in the states st (all dense, without output), until
// a lane enters a special state or the lanes end, and returns the steps consumed so far. The
// loop keeps the states in registers and does nothing else: per lane and step, one load of
// the class, one of the transition.
func (a *automaton) walkDense(ib []byte, k int, st *[batchLanes]uint32) int {
	trans := a.trans
	s0, s1, s2, s3, s4, s5, s6, s7 := st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]
	for k < len(ib)/batchLanes {
		row := ib[k*batchLanes:][:batchLanes]
		s0 = trans[s0+uint32(row[0])]
		s1 = trans[s1+uint32(row[1])]
		s2 = trans[s2+uint32(row[2])]
		s3 = trans[s3+uint32(row[3])]
		s4 = trans[s4+uint32(row[4])]
		s5 = trans[s5+uint32(row[5])]
		s6 = trans[s6+uint32(row[6])]
		s7 = trans[s7+uint32(row[7])]
		k++
		if (s0|s1|s2|s3|s4|s5|s6|s7)&(flagMatch|flagSparse) != 0 {
			break
		}
	}
	st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7] = s0, s1, s2, s3, s4, s5, s6, s7
	return k
}

// decodeRune decodes the rune at text[i], which is not ASCII, exactly as utf8.DecodeRune
// does, with a fast path for the three bytes of a Chinese character.
func decodeRune(text []byte, i int) (rune, int) {
	if b := text[i]; b >= 0xE0 && b < 0xF0 && i+2 < len(text) {
		r := rune(b&0x0F)<<12 | rune(text[i+1]&0x3F)<<6 | rune(text[i+2]&0x3F)
		if text[i+1]&0xC0 != 0x80 || text[i+2]&0xC0 != 0x80 || r < 0x800 || r >= 0xD800 && r < 0xE000 {
			return utf8.DecodeRune(text[i:])
		}
		return r, 3
	}
	return utf8.DecodeRune(text[i:])
}

// maxClasses bounds the class stream of a text of n bytes: a two-byte rune may have a
// three-byte code, nothing else takes more classes than bytes.
func maxClasses(n int) int { return n + n/2 }

// classify writes the class stream of text into lane[0], lane[batchLanes], lane[2*batchLanes]
// and so on, and returns its length: for each rune, the classes scanNorm steps the automaton
// on. An ASCII byte has its class in acls; another rune its symbol code's classes from the rune
// table, or classNone when its folded form is in no key (from any state at a symbol boundary
// that leads back to the root, as scanNorm's actBreak does). A rune that normalization removes
// adds nothing: it leaves the state as it is. A stream is never longer than maxClasses and
// usually shorter than its text: spacing and punctuation drop out and a Chinese character
// takes two classes instead of three bytes. lane must have room for maxClasses(len(text))+3
// classes and hold classNone in all of them; classify leaves classNone after the stream.
//
// The loop is written for throughput: ASCII eight bytes at a time when a word has no other
// byte, every class written whether kept or not and the position advanced by the number
// kept, so that what the text holds decides few branches.
func (a *automaton) classify(lane []byte, text []byte) int {
	acls, rt := &a.acls, a.runes
	const w = batchLanes
	lane = lane[:(maxClasses(len(text))+3-1)*w+1]
	j := 0
	for i := 0; i < len(text); {
		if i+8 <= len(text) && binary.LittleEndian.Uint64(text[i:])&0x8080808080808080 == 0 {
			for _, b := range text[i : i+8] {
				c := acls[b&0x7f]
				lane[j*w] = c
				j += int((uint32(c-classSkip) + 0xff) >> 8) // 1 unless c is classSkip
			}
			i += 8
			continue
		}
		b := text[i]
		if b < utf8.RuneSelf {
			c := acls[b]
			lane[j*w] = c
			j += int((uint32(c-classSkip) + 0xff) >> 8)
			i++
			continue
		}
		var r rune
		size := 3
		if b >= 0xE0 && b < 0xF0 && i+2 < len(text) {
			r = rune(b&0x0F)<<12 | rune(text[i+1]&0x3F)<<6 | rune(text[i+2]&0x3F)
			if text[i+1]&0xC0 != 0x80 || text[i+2]&0xC0 != 0x80 || r < 0x800 || r >= 0xD800 && r < 0xE000 {
				r, size = utf8.DecodeRune(text[i:])
			}
		} else {
			r, size = utf8.DecodeRune(text[i:])
		}
		i += size
		act := rt.lookupFast(r)
		// actBreak writes classNone (its byte is 0); actSkip writes a zero it does not keep.
		lane[j*w], lane[(j+1)*w], lane[(j+2)*w] = byte(act>>8), byte(act>>16), byte(act>>24)
		n := act & actLenMask
		if act == actBreak {
			n = 1
		}
		j += int(n)
	}
	// Classes written but not kept, beyond the stream, back to classNone.
	lane[j*w], lane[(j+1)*w], lane[(j+2)*w] = classNone, classNone, classNone
	return j
}

// lookupFast is lookup with the common case inlined.
func (t *runeTable) lookupFast(r rune) uint32 {
	if uint32(r) < foldPlanes {
		return t.pages[t.top[r>>8]][r&0xff]
	}
	return t.lookup(r)
}

// classLen is the number of classes classify writes for the rune at text[i], and the
// rune's size.
func (a *automaton) classLen(text []byte, i int) (n, size int) {
	if b := text[i]; b < utf8.RuneSelf {
		if a.acls[b] == classSkip {
			return 0, 1
		}
		return 1, 1
	}
	r, size := decodeRune(text, i)
	act := a.runes.lookupFast(r)
	switch {
	case act&actLenMask != 0:
		return int(act & actLenMask), size
	case act == actBreak:
		return 1, size
	}
	return 0, size
}

// asciiKept returns how many of the eight ASCII bytes of w (none >= 0x80) normalization keeps,
// each one class: the letters and digits (asciiFold). It tests the eight at once (adding a
// constant to each byte sets its high bit when the byte is at least some value, and no byte
// carries into the next), where a lookup per byte cost mapEnds most of its time on chat in
// which every message has hits.
func asciiKept(w uint64) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	atLeast := func(w, lo uint64) uint64 { return w + (0x80-lo)*ones } // high bit: byte >= lo
	above := func(w, hi uint64) uint64 { return w + (0x7f-hi)*ones }   // high bit: byte > hi
	digits := atLeast(w, '0') &^ above(w, '9')
	lw := w | 0x20*ones // letters of either case, as lower case
	letters := atLeast(lw, 'a') &^ above(lw, 'z')
	return bits.OnesCount64((digits | letters) & highs)
}

// mapEnds turns the ends of hits, positions in the class stream of text in increasing order,
// into offsets in text: the end of the rune whose classes end there, which is where scanNorm
// records the hit. A hit ends on the last class of a key, never inside a rune's classes, and a
// removed rune adds no class, so the first rune whose classes reach the position is the one.
// Eight ASCII bytes add at most eight classes, so a block of them that cannot reach the next
// hit is counted at once.
func (a *automaton) mapEnds(text []byte, hits []hit) {
	p, h := 0, 0
	for i := 0; i < len(text) && h < len(hits); {
		if p+8 < hits[h].end && i+8 <= len(text) {
			if w := binary.LittleEndian.Uint64(text[i:]); w&0x8080808080808080 == 0 {
				p += asciiKept(w)
				i += 8
				continue
			}
		}
		n, size := a.classLen(text, i)
		i += size
		p += n
		for h < len(hits) && hits[h].end <= p {
			hits[h].end = i
			h++
		}
	}
}
