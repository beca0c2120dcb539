package console

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestEveryTextInBothLanguages: every UI text key the templates and the code use is in
// English and in Traditional Chinese, and neither language has a key the other lacks.
func TestEveryTextInBothLanguages(t *testing.T) {
	used := map[string]bool{}
	keyRE := regexp.MustCompile(`\.T "([a-z-]+)"|refuse\(http\.Status\w+, "([a-z-]+)"|refusef\(http\.Status\w+, "([a-z-]+)"|p\.T\("([a-z-]+)"\)|key: "([a-z-]+)"`)
	add := func(b []byte) {
		for _, m := range keyRE.FindAllSubmatch(b, -1) {
			for _, g := range m[1:] {
				if len(g) > 0 {
					used[string(g)] = true
				}
			}
		}
	}
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		add(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gos, _ := filepath.Glob("*.go")
	for _, g := range gos {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		add(b)
	}
	for _, phase := range []string{"", "read", "prove", "write"} {
		used["phase-"+phase] = true
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys: the pattern is wrong", len(used))
	}
	for k := range used {
		for lang, tr := range texts {
			if _, ok := tr[k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
	}
	for k := range texts[LangEnglish] {
		if _, ok := texts[LangTraditionalChinese][k]; !ok {
			t.Errorf("zh-Hant lacks %q", k)
		}
	}
	for k := range texts[LangTraditionalChinese] {
		if _, ok := texts[LangEnglish][k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
}
