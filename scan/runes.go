package scan

import (
	"sync"
)

// Symbol codes. A normalizing automaton does not run on UTF-8: each folded non-ASCII rune that
// occurs in some key gets a short code of its own, two bytes for the 3,072 most frequent and
// three beyond, with lead and continuation bytes disjoint from ASCII and from each other (as in
// UTF-8), so a key can only match at a symbol boundary. A Chinese character then costs two
// transitions instead of three, and the alphabet of the DFA stays small.
const (
	maxShortSymbols = 48 * 64
	maxSymbols      = maxShortSymbols + 16*64*64
)

// appendSymbolCode appends the code of the symbol numbered id (by falling frequency) to dst.
func appendSymbolCode(dst []byte, id int) []byte {
	if id < maxShortSymbols {
		return append(dst, byte(0xC0+id/64), byte(0x80+id%64))
	}
	id -= maxShortSymbols
	return append(dst, byte(0xF0+id/4096), byte(0x80+id/64%64), byte(0x80+id%64))
}

// foldInfo holds what every normalizing compile needs and nothing changes: for each rune the
// action when its folded form is in no key (skip or break), and for each folded rune the other
// runes that fold to it.
type foldInfo struct {
	base runeTable
	inv  map[rune][]rune
}

var foldInfos = sync.OnceValue(func() *foldInfo {
	fi := &foldInfo{inv: map[rune][]rune{}}
	index := map[[256]uint32]uint16{}
	for p := range fi.base.top {
		var page [256]uint32
		for i := range page {
			r := rune(p<<8 | i)
			f := foldRune(r)
			switch {
			case f == foldSkip:
				page[i] = actSkip
			default:
				page[i] = actBreak
				if f != r {
					fi.inv[f] = append(fi.inv[f], r)
				}
			}
		}
		k, ok := index[page]
		if !ok {
			k = uint16(len(fi.base.pages))
			fi.base.pages = append(fi.base.pages, page)
			index[page] = k
		}
		fi.base.top[p] = k
	}
	return fi
})

// buildRuneTable gives every rune that folds to a key symbol the classes of that symbol's code.
// Pages without such runes stay shared with the base table.
func buildRuneTable(a *automaton, symbols map[rune][]byte) *runeTable {
	fi := foldInfos()
	t := &runeTable{top: fi.base.top, high: map[rune]uint32{}}
	t.pages = make([][256]uint32, len(fi.base.pages), len(fi.base.pages)+64)
	copy(t.pages, fi.base.pages)
	private := map[uint16]bool{}
	set := func(r rune, act uint32) {
		if r >= foldPlanes {
			t.high[r] = act
			return
		}
		p := t.top[r>>8]
		if !private[p] {
			t.pages = append(t.pages, t.pages[p])
			p = uint16(len(t.pages) - 1)
			t.top[r>>8] = p
			private[p] = true
		}
		t.pages[p][r&0xff] = act
	}
	for f, code := range symbols {
		act := uint32(len(code))
		for k, b := range code {
			act |= uint32(a.cls[b]) << (8 + 8*k)
		}
		set(f, act)
		for _, r := range fi.inv[f] {
			set(r, act)
		}
	}
	return t
}
