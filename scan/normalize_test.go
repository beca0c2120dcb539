package scan

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"W h a t s A p p":      "whatsapp",
		"ＷｈａｔｓＡｐｐ１２３":          "whatsapp123",
		"微.信":                  "微信",
		"微\u200b\u200c\u200d信": "微信",
		"\ufeffBOM":            "bom",
		"內幕消息":                 "内幕消息",
		"保證回報，穩賺！":             "保证回报稳赚",
		"啓動":                   "启动", // Hong Kong variant form
		"衞生":                   "卫生",
		"們們":                   "们们",
		"Straße ΣΊΣΥΦΟΣ":       "straßeσίσυφοσ",
		"👍 ok 😀":               "ok",
		"e\u0301":              "e", // combining marks go
		"\xff\xfeab":           "ab",
		"":                     "",
	} {
		assert.Equal(t, want, Normalize(in), "%q", in)
	}
}

func TestFoldIsIdempotentAndKeepsOnlyLettersAndNumbers(t *testing.T) {
	for r := rune(0); r < foldPlanes+0x1000; r++ {
		f := foldRune(r)
		if f == foldSkip {
			continue
		}
		require.Equal(t, f, foldRune(f), "fold(fold(%U)) != fold(%U)", r, r)
		require.True(t, utf8.ValidRune(f))
		if c := foldRuneCase(r); c != foldSkip {
			require.Equal(t, f, foldRune(c), "case-keeping fold of %U folds on to the full fold", r)
		} else {
			t.Fatalf("%U kept by fold but removed by case-keeping fold", r)
		}
	}
}

func TestScriptTable(t *testing.T) {
	ts := parseTSFold()
	assert.GreaterOrEqual(t, len(ts), 3500, "character pairs from OpenCC")
	for trad, simp := range map[rune]rune{'們': '们', '說': '说', '證': '证', '險': '险', '風': '风', '錢': '钱', '體': '体',
		'門': '门', '發': '发', '髮': '发', '臺': '台', '為': '为', '爲': '为', '衛': '卫', '裡': '里', '裏': '里', '賺': '赚', '刪': '删'} {
		assert.Equal(t, simp, foldRune(trad), "%c", trad)
		assert.Equal(t, simp, foldRune(simp), "%c stays", simp)
	}
}

func TestWordRunes(t *testing.T) {
	for _, r := range "aZ09éЖΩＡ" {
		assert.True(t, isWordRune(r), "%c", r)
	}
	for _, r := range " .,微信ひカ한ㄅ😀\u200b" {
		assert.False(t, isWordRune(r), "%c", r)
	}
}
