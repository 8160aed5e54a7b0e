package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fastDecodeOutcome is everything DecodeMarathonApps returns, with the errors as strings.
type fastDecodeOutcome struct {
	Apps    []*App
	AppErrs []string
	Err     string
}

func fastOutcomeOf(apps []*App, appErrs []error, err error) fastDecodeOutcome {
	o := fastDecodeOutcome{Apps: apps}
	for _, e := range appErrs {
		o.AppErrs = append(o.AppErrs, e.Error())
	}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

// fastCheckSameAsStd fails t unless the fast decoder and the encoding/json reference return
// deeply equal results for data.
func fastCheckSameAsStd(t testing.TB, name string, data []byte) {
	t.Helper()
	fast := fastOutcomeOf(decodeMarathonAppsFast(data))
	std := fastOutcomeOf(decodeMarathonAppsStd(data))
	if !reflect.DeepEqual(fast, std) {
		fj, _ := json.MarshalIndent(fast, "", " ")
		sj, _ := json.MarshalIndent(std, "", " ")
		in := string(data)
		if len(in) > 2000 {
			in = in[:2000] + "…"
		}
		t.Errorf("%s: fast decoder differs from encoding/json\ninput: %q\nfast: %s\n std: %s", name, in, fj, sj)
	}
}

// fastCheckNoFallback fails t unless the fast decoder decodes data all by itself (no fallback to
// encoding/json, for the document or any app).
func fastCheckNoFallback(t testing.TB, name string, data []byte) {
	t.Helper()
	res, ok := tryDecodeFast(data)
	if !ok || res.stdDecodes != 0 {
		t.Errorf("%s: fast decoder fell back to encoding/json (document: %t, apps: %d)", name, !ok, res.stdDecodes)
	}
}

func fastFixtureFiles(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join("testdata", "marathon"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("only %d Marathon fixtures", len(out))
	}
	return out
}

func TestFastDecoderFixtures(t *testing.T) {
	for name, data := range fastFixtureFiles(t) {
		var compact, indented bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Fatal(name, err)
		}
		if err := json.Indent(&indented, compact.Bytes(), "\r\n", "\t "); err != nil {
			t.Fatal(name, err)
		}
		for variant, d := range map[string][]byte{"": data, " compact": compact.Bytes(), " indented": indented.Bytes()} {
			fastCheckNoFallback(t, name+variant, d)
			fastCheckSameAsStd(t, name+variant, d)
		}
		// The same apps as a bare list, and (the first) as {"app":…} and as a bare definition.
		var env struct{ Apps []json.RawMessage }
		if err := json.Unmarshal(data, &env); err != nil || len(env.Apps) == 0 {
			continue
		}
		list := []byte("[\n")
		for i, a := range env.Apps {
			if i > 0 {
				list = append(list, ",\n"...)
			}
			list = append(list, a...)
		}
		list = append(list, ']')
		for variant, d := range map[string][]byte{
			" list": list,
			" app":  append(append([]byte(`{"app":`), env.Apps[0]...), '}'),
			" bare": env.Apps[0],
		} {
			fastCheckNoFallback(t, name+variant, d)
			fastCheckSameAsStd(t, name+variant, d)
		}
	}
}

func TestFastDecoderGeneratedPayload(t *testing.T) {
	data := marathonAppsJSON(200, 3)
	fastCheckNoFallback(t, "generated", data)
	fastCheckSameAsStd(t, "generated", data)
	apps, appErrs, err := DecodeMarathonApps(data)
	if err != nil || len(appErrs) > 0 || len(apps) != 200 || len(apps[199].Tasks) != 3 {
		t.Fatalf("%d apps, %v, %v", len(apps), appErrs, err)
	}
}

// fastEdgeCases are documents the fast decoder must decode exactly like encoding/json (also
// the seed corpus of FuzzDecodeMarathonApps).
var fastEdgeCases = []string{
	// Shapes.
	`{"apps":[{"id":"/a"},{"id":"b"}]}`, `{"app":{"id":"/a/b"}}`, `{"id":"web","instances":2}`,
	` [{"id":"/a"},{"id":"/b"}] `, `{"apps":[]}`, `[]`, `{}`, `[{}]`, `{"apps":[{}]}`, `{"apps":[null]}`,
	`{"apps":[null,{"id":"/a"}]}`, `[null]`, `{"app":{}}`,
	`{"apps":null}`, `{"app":null}`, `{"id":null}`, `null`, `"apps"`, `123`, `true`, `{"apps":[5,"x",[],true,{"id":"/ok"}]}`,
	`{"apps":null,"app":{"id":"x"}}`, `{"apps":null,"app":{"id":"x","instances":"bad"}}`,
	`{"apps":[{"id":"/a"}],"app":{"id":"/b"}}`, `{"app":{"id":"/b"},"apps":[{"id":"/a"}]}`,
	`{"apps":[],"id":5}`, `{"apps":[],"id":"x"}`, `{"apps":[],"app":{"instances":"x"}}`, `{"apps":[],"app":{"id":"/b"}}`, `{"apps":[{"id":"/a"}],"app":{"id":"/b","instances":"x"}}`,
	`{"app":{"id":"/b"},"id":5}`, `{"app":{"id":"/b","instances":"x"}}`, `{"app":5}`, `{"app":[]}`, `{"app":"x"}`,
	`{"id":"x","instances":"three"}`, `{"id":5}`, `{"id":5,"instances":1}`, `{"id":"x","apps":null}`,
	`{"apps":{"id":"/a"}}`, `{"apps":"nope"}`, `{"apps":[{"id":"/a"}],"apps":[{"id":"/b","tasks":[]}]}`,
	`{"apps":[{"id":"/a","instances":1}],"apps":[{"instances":"x"}]}`,
	`{"app":{"id":"/a"},"app":{"instances":2}}`, `{"id":"/a","id":"/b"}`, `{"frameworks":[]}`,
	`{"APPS":[{"id":"/a"}]}`, `{"Apps":[{"id":"/a"}],"apps":[{"id":"/b"}]}`, `{"App":{"id":"/a"}}`, `{"ID":"/a"}`,
	`{"Id":"/a","id":"/b"}`, `{"\u0061pps":[{"id":"/a"}]}`, `{"app\u0073":[{"id":"/a"}]}`,
	// Escapes, unicode and invalid UTF-8.
	`{"apps":[{"id":"/a\u00e9\ud83d\ude00\u2028","labels":{"k\n":"v\"\\\/\b\f\n\r\t","\u00fc":"\u0000"}}]}`,
	`{"apps":[{"id":"/\ud800","labels":{"a":"\udc00x","b":"\ud800\u0041","c":"\ud83d\ude00\ud83d"}}]}`,
	"{\"apps\":[{\"id\":\"/a\xff\",\"labels\":{\"\xfe\":\"\xc3\",\"ok\":\"\xc3\xa9\",\"sur\":\"\xed\xa0\x80\"}}]}",
	"{\"apps\":[{\"id\":\"/caf\xc3\xa9\",\"version\":\"\xef\xbf\xbd\",\"tasks\":[{\"id\":\"t\xe2\x82\xac\",\"host\":\"h\\u00e9\"}]}]}",
	`{"apps":[{"i\u0064":"/escaped-key","instances":1}]}`, `{"apps":[{"id":"/a","tas\u212As":[{"id":"t"}]}]}`,
	"{\"apps\":[{\"id\":\"/a\",\"tas\xe2\x84\xaas\":[{\"id\":\"t\"}]}]}", `{"apps":[{"id":"/a","ſd":"x"}]}`,
	`{"apps":[{"id":"/a","x\"y":1,"\\":2,"\u00e9t\u00e9":{"a":[]}}]}`,
	// Nulls everywhere.
	`{"apps":[{"id":"/a","instances":null,"labels":null,"version":null,"ports":null,"portDefinitions":null,` +
		`"container":null,"networks":null,"ipAddress":null,"healthChecks":null,"readinessChecks":null,` +
		`"deployments":null,"readinessCheckResults":null,"tasks":null}]}`,
	`{"apps":[{"id":"/a","labels":{"a":null},"portDefinitions":[null,{"port":null,"protocol":null,"name":null,"labels":null}],` +
		`"container":{"type":null,"docker":null,"portMappings":[null,{"containerPort":null,"labels":{"x":null}}]},` +
		`"networks":[null,{"mode":null,"name":null}],"ipAddress":{"networkName":null,"discovery":{"ports":[null,{"number":null}]}},` +
		`"healthChecks":[null,{"protocol":null,"command":null,"ignoreHttp1xx":null,"port":null}],"readinessChecks":[null],` +
		`"deployments":[null,{"id":null}],"readinessCheckResults":[null,{"taskId":null,"ready":null}],` +
		`"tasks":[null,{"id":null,"appId":null,"state":null,"ports":[null],"ipAddresses":[null,{"ipAddress":null}],"healthCheckResults":[null,{"alive":null,"consecutiveFailures":null}]}]}]}`,
	// Empty arrays and objects.
	`{"apps":[{"id":"/a","labels":{},"ports":[],"portDefinitions":[],"container":{},"networks":[],"ipAddress":{},` +
		`"healthChecks":[],"readinessChecks":[],"deployments":[],"readinessCheckResults":[],"tasks":[{"ports":[],"ipAddresses":[],"healthCheckResults":[]}]}]}`,
	`{"apps":[{"id":"/a","portDefinitions":[{}],"container":{"docker":{},"portMappings":[{}]},"networks":[{}],` +
		`"ipAddress":{"discovery":{}},"healthChecks":[{"command":{}}],"deployments":[{}],"tasks":[{}]}]}`,
	// Unknown fields of every type, nested, and numbers in them.
	`{"apps":[{"x":{"a":[1,{"b":null},true,false,"s",-1.5e-3,[],{}],"c":{"d":{"e":[[[]]]}}},"id":"/a","y":[{"z":0}],` +
		`"n":[1e3,-0,1.0,0.5E+10,-0.0,1E-2,123456789012345678901234567890,-1e400],"tasks":[{"id":"t","extra":{"id":5}}],"w":"\"}]"}],"more":[{"apps":1}]}`,
	// Numbers into ints.
	`{"apps":[{"id":"/a","instances":-0}]}`, `{"apps":[{"id":"/a","instances":1e3}]}`,
	`{"apps":[{"id":"/a","instances":1.0}]}`, `{"apps":[{"id":"/a","instances":1E3}]}`,
	`{"apps":[{"id":"/a","instances":9223372036854775807}]}`, `{"apps":[{"id":"/a","instances":-9223372036854775808}]}`,
	`{"apps":[{"id":"/a","instances":9223372036854775808}]}`, `{"apps":[{"id":"/a","instances":-9223372036854775809}]}`,
	`{"apps":[{"id":"/a","instances":99999999999999999999}]}`, `{"apps":[{"id":"/a","instances":10000000000000000000}]}`,
	`{"apps":[{"id":"/a","instances":00}]}`, `{"apps":[{"id":"/a","instances":-}]}`, `{"apps":[{"id":"/a","instances":1.}]}`,
	`{"apps":[{"id":"/a","instances":+1}]}`, `{"apps":[{"id":"/a","instances":.5}]}`, `{"apps":[{"id":"/a","instances":0x10}]}`,
	`{"apps":[{"id":"/a","ports":[1,-2,0,65535],"tasks":[{"ports":[31000,1e2]}]}]}`,
	// Wrong types: that app is an AppError, the others decode.
	`{"apps":[{"id":"/a"},{"id":"/bad","instances":"three"},{"id":"/c"}]}`,
	`{"apps":[{"id":"/bad","labels":{"a":1}},{"id":"/b"}]}`, `{"apps":[{"id":"/bad","labels":[]}]}`,
	`{"apps":[{"id":"/bad","tasks":{}}]}`, `{"apps":[{"id":"/bad","container":5}]}`, `{"apps":[{"id":"/bad","container":[]}]}`,
	`{"apps":[{"id":"/bad","ports":["1"]}]}`, `{"apps":[{"id":5}]}`, `{"apps":[{"id":true}]}`, `{"apps":[{"id":"/bad","version":1}]}`,
	`{"apps":[{"instances":"x"},{"id":"/b"}]}`, `{"apps":[{"instances":1},{"id":"/b"}]}`,
	`{"apps":[{"id":"/bad","healthChecks":[{"ignoreHttp1xx":"true"}]}]}`, `{"apps":[{"id":"/bad","networks":[{"mode":5}]}]}`,
	`{"apps":[{"id":"/bad","tasks":[{"id":"t","state":7}]}]}`, `{"apps":[{"id":"/bad","tasks":[5]}]}`,
	`{"apps":[{"id":"/bad","tasks":[{"healthCheckResults":[{"alive":1}]}]}]}`,
	`[{"id":"/a"},{"id":"/bad","instances":"x"}]`, `[{"instances":"x"}]`, `[{"instances":1}]`,
	// Keys in another case, which encoding/json matches.
	`{"apps":[{"ID":"/a","Instances":3,"LABELS":{"a":"b"},"Tasks":[{"Id":"t","STATE":"TASK_RUNNING"}]}]}`,
	`{"apps":[{"id":"/a","networks":[{"mode":"container/bridge","Mode":"host","MODE":"container"}]}]}`,
	`{"apps":[{"id":"/a","healthChecks":[{"command":{"value":"a","Value":"b","VALUE":"c"}}],"deployments":[{"id":"1"},{"ID":"2"},{"iD":"3"}]}]}`,
	// Duplicate keys.
	`{"apps":[{"id":"/a","id":"/b","instances":1,"instances":null,"version":"v1","version":"v2"}]}`,
	`{"apps":[{"id":"/a","labels":{"a":"1","b":"2"},"labels":{"b":"3","c":"4"}}]}`,
	`{"apps":[{"id":"/a","labels":{"a":"1"},"labels":null,"labels":{"b":"2"}}]}`,
	`{"apps":[{"id":"/a","ports":[1,2,3],"ports":[5]}]}`, `{"apps":[{"id":"/a","ports":[1,2,3],"ports":[5],"ports":[null,null]}]}`,
	`{"apps":[{"id":"/a","ports":[1,2,3],"ports":[]}]}`, `{"apps":[{"id":"/a","ports":[1,2,3],"ports":null,"ports":[null]}]}`,
	`{"apps":[{"id":"/a","tasks":[{"id":"t1","host":"h1","ports":[1]},{"id":"t2","host":"h2"}],"tasks":[{"id":"t3"}],"tasks":[null,{"state":"TASK_KILLING"}]}]}`,
	`{"apps":[{"id":"/a","container":{"docker":{"network":"BRIDGE","portMappings":[{"containerPort":80,"labels":{"a":"b"}}]}},` +
		`"container":{"type":"DOCKER","docker":{"portMappings":[{"hostPort":1,"labels":{"c":"d"}}]}}}]}`,
	`{"apps":[{"id":"/a","container":{"docker":{"network":"BRIDGE"}},"container":null,"container":{"type":"MESOS"}}]}`,
	`{"apps":[{"id":"/a","networks":[{"mode":"container/bridge"}],"networks":[{"name":"n"}],"portDefinitions":[{"port":1,"labels":{"a":"b"}}],"portDefinitions":[{"labels":{"c":"d"}}]}]}`,
	`{"apps":[{"id":"/a","readinessCheckResults":[{"taskId":"t","ready":true},{"taskId":"t","ready":false}],"tasks":[{"id":"t"}]}]}`,
	// Nothing of one app's tasks shows in the next one's (the task array is reused).
	`{"apps":[{"id":"/a","tasks":[{"id":"a1","host":"h","ports":[1],"ipAddresses":[{"ipAddress":"1.2.3.4"}]},{"id":"a2","host":"h2"}]},` +
		`{"id":"/b","tasks":[{"id":"b1"},{},null]},{"id":"/c","tasks":[{"id":"c1","host":"h","ports":[1]},{"id":"c2","ports":"x"}]},` +
		`{"id":"/d","tasks":[{},{"id":"d2"}]},{"id":"/e","tasks":[]},{"id":"/f","tasks":null},{"id":"/g","tasks":[{"state":"TASK_KILLING"}]}]}`,
	// Whitespace variety.
	"\t\r\n {\r\n\t\"apps\" \t:\n[ { \"id\"\t:\r\"/a\" ,\n\"labels\" : { \"a\" : \"b\" , \"c\":null } , \"tasks\" : [ { \"id\" : \"t\" , \"ports\" : [ 1 , 2 ] } , null ] } ] \n}\n\t ",
	"[\n]", "{ }", "{\"apps\" : [ ] }", "\v{\"apps\":[]}\f", "\u00a0{\"apps\":[]}\u0085",
	// Not well-formed.
	`{"apps":[`, `{"apps":[{"id":"/a"},]}`, `{"apps":[{"id":"/a",}]}`, `{"apps":[{"id":"/a"}]`, `{"apps":[{"id":"/a"}]}}`,
	`{"apps":[{"id":"/a"}]} x`, `{"apps":[]}{}`, `[] []`, `[{"id":"/a"}`, `[{"id":"/a"},]`, `{"apps":[{"id":"/a"} {"id":"/b"}]}`,
	`{"apps":{"id":"/a"},"x":1,"y":[}`, `{"apps":[{"id":"/a","x":tru}]}`, `{"apps":[{"id":"/a","x":nul}]}`,
	`{"apps":[{"id":"/a","x":"\x"}]}`, `{"apps":[{"id":"/a","x":"\u12"}]}`, `{"apps":[{"id":"/a","x":"\u12g4"}]}`,
	"{\"apps\":[{\"id\":\"/a\nb\"}]}", "{\"apps\":[{\"id\":\"/a\",\"x\":\"\t\"}]}", "{\"apps\":[{\"id\":\"/a\x00\"}]}",
	`{"apps":[{"id":"/a","x":01}]}`, `{"apps":[{"id":"/a","x":1.e3}]}`, `{"apps":[{"id":"/a","x":1e}]}`, `{"apps":[{"id":"/a","x":-}]}`,
	`{"apps":[{"id":"/a","x":[1 2]}]}`, `{"apps":[{"id":"/a","x":{"a" 1}}]}`, `{"apps":[{"id":"/a","x":{1:2}}]}`,
	`{"apps":[{"id":"/a","x":{"a":1,}}]}`, `{"apps":[{"id":"/a","x":[}]}`, `{"apps":[{"id":"/a","instances":"x","y":[}]}`,
	`{"apps":[{"id":"/bad","instances":"x"},]}`, `{"apps":[{"id":"/a"}],}`, `{,"apps":[]}`, `{"apps":[]`, `{"apps"`, `{"apps":`,
	"\xef\xbb\xbf{\"apps\":[]}", `{'apps':[]}`, `{"apps":[{"id":"/a"}]}]`, `}`, `]`, `{"apps":[{"id":"/a","instances":1}1]}`,
	`{"apps":[{"id":"/a","labels":{"a":"b"c}}]}`, `{"apps":[{"id":"/a","labels":{"a":"b",}}]}`, `{"apps":[{"id":"/a","ports":[1,]}]}`,
}

func TestFastDecoderEdgeCases(t *testing.T) {
	for i, in := range fastEdgeCases {
		fastCheckSameAsStd(t, fmt.Sprintf("case %d", i), []byte(in))
	}
}

// The fast decoder must not hand the common documents to encoding/json: these must stay fast.
func TestFastDecoderHandlesCommonShapes(t *testing.T) {
	for _, in := range []string{
		`{"apps":[{"id":"/a"},{"id":"b"}]}`, `{"app":{"id":"/a/b"}}`, `{"id":"web","instances":2}`, ` [{"id":"/a"},{"id":"/b"}] `,
		`{"apps":[]}`, `{"apps":[null]}`, `{"apps":[{"id":"/a","x":{"y":[1,-2.5e3,true,null,"\u00e9"]}}],"z":1}`,
		`{"apps":[{"id":"/a\u00e9\"","labels":{"k\n":"v"},"networks":[{"mode":"container","name":"n"}],"deployments":[{"id":"d"}],` +
			`"healthChecks":[{"protocol":"COMMAND","command":{"value":"true"}}]}]}`,
		"{\"apps\":[{\"id\":\"/caf\xc3\xa9\",\"labels\":{\"\xc3\xa9\":\"\xff\"}}]}",
	} {
		fastCheckNoFallback(t, in, []byte(in))
		fastCheckSameAsStd(t, in, []byte(in))
	}
}

// A bad app is re-decoded with encoding/json on its own: the rest of the document stays on the
// fast path.
func TestFastDecoderPerAppFallback(t *testing.T) {
	for _, bad := range []string{
		`{"id":"/bad","instances":"three"}`, `{"id":"/bad","instances":1.0}`, `{"id":"/bad","instances":1e3}`,
		`{"id":"/bad","instances":99999999999999999999}`, `{"id":"/bad","labels":{"a":1}}`, `{"id":"/bad","tasks":{}}`,
		`{"ID":"/bad"}`, `{"i\u0064":"/bad"}`, `5`, `"x"`,
	} {
		in := `{"apps":[{"id":"/a"},` + bad + `,{"id":"/c","instances":1}]}`
		res, ok := tryDecodeFast([]byte(in))
		if !ok || res.stdDecodes != 1 {
			t.Errorf("%s: document fallback %t, %d apps re-decoded, want 1", bad, !ok, res.stdDecodes)
		}
		fastCheckSameAsStd(t, in, []byte(in))
	}
}

// TestFastDecoderAppErrors pins the per-app error messages: encoding/json's, as before the
// fast decoder, naming the app.
func TestFastDecoderAppErrors(t *testing.T) {
	const prefix = "json: cannot unmarshal "
	tests := []struct{ app, want string }{
		{`{"id":"x","instances":"three"}`, "string into Go struct field wireApp.instances of type int"},
		{`{"id":"x","labels":{"a":1}}`, "number into Go struct field wireApp.labels of type string"},
		{`{"id":"x","container":{"docker":{"network":5}}}`, "number into Go struct field .container.docker.network of type string"},
		{`{"id":"x","container":5}`, `number into Go struct field wireApp.container of type struct { Type string "json:\"type\""; ` +
			`Docker *struct { Network string "json:\"network\""; PortMappings []discovery.wirePortMapping "json:\"portMappings\"" } "json:\"docker\""; ` +
			`PortMappings []discovery.wirePortMapping "json:\"portMappings\"" }`},
		{`{"id":"x","healthChecks":[{"command":{"value":5}}]}`, "number into Go struct field .healthChecks.command.Value of type string"},
		{`{"id":"x","healthChecks":[{"command":5}]}`, "number into Go struct field .healthChecks.command of type struct { Value string }"},
		{`{"id":"x","networks":[{"mode":5}]}`, "number into Go struct field .networks.Mode of type string"},
		{`{"id":"x","networks":5}`, "number into Go struct field wireApp.networks of type []struct { Mode string; Name string }"},
		{`{"id":"x","ipAddress":{"discovery":{"ports":[{"number":"1"}]}}}`, "string into Go struct field .ipAddress.discovery.ports.number of type int"},
		{`{"id":"x","tasks":[{"ipAddresses":[{"ipAddress":1}]}]}`, "number into Go struct field .tasks.ipAddresses.ipAddress of type string"},
		{`{"id":"x","tasks":[{"healthCheckResults":[{"alive":1}]}]}`, "number into Go struct field .tasks.healthCheckResults.alive of type bool"},
		{`{"id":"x","readinessCheckResults":[{"ready":"yes"}]}`, "string into Go struct field .readinessCheckResults.ready of type bool"},
		{`{"id":"x","deployments":[{"id":1}]}`, "number into Go struct field .deployments.ID of type string"},
		{`{"id":"x","tasks":[{"ports":[1.5]}]}`, "number 1.5 into Go struct field wireTask.tasks.ports of type int"},
	}
	for _, tt := range tests {
		in := `{"apps":[{"id":"/good"},` + tt.app + `]}`
		apps, appErrs, err := DecodeMarathonApps([]byte(in))
		if err != nil || len(apps) != 1 || apps[0].ID != "/good" || len(appErrs) != 1 {
			t.Errorf("%s: apps %v, app errors %v, err %v", tt.app, apps, appErrs, err)
			continue
		}
		if got, want := appErrs[0].Error(), "app /x: "+prefix+tt.want; got != want {
			t.Errorf("%s:\n got %s\nwant %s", tt.app, got, want)
		}
		fastCheckSameAsStd(t, tt.app, []byte(in))
	}
}

// Every prefix of a document, and the document with one byte replaced, decode as with
// encoding/json: mostly "malformed" errors, sometimes a different document.
func TestFastDecoderDamagedInput(t *testing.T) {
	docs := [][]byte{
		readFixture(t, "marathon/1-nginx.json"),
		marathonAppsJSON(2, 2),
		[]byte(`{"apps":[{"id":"/a","instances":2,"labels":{"a":"b\u00e9"},"ports":[1,2],"x":[1.5e3,-0,true,false,null,{"y":"z"}],` +
			`"container":{"docker":{"network":"BRIDGE"},"portMappings":[{"containerPort":80}]},"tasks":[{"id":"t","state":"TASK_RUNNING"}]}]}`),
	}
	replacements := []byte("\"\\{}[]:,0-.eE+ntf\x00\x1f\x80\xff aZ")
	r := rand.New(rand.NewPCG(1, 2))
	for di, doc := range docs {
		for n := 0; n < len(doc); n += 1 + n/300 { // every prefix up to 300 bytes, fewer after
			fastCheckSameAsStd(t, fmt.Sprintf("doc %d truncated at %d", di, n), doc[:n])
		}
		for range 1000 {
			i := r.IntN(len(doc))
			d := bytes.Clone(doc)
			d[i] = replacements[r.IntN(len(replacements))]
			fastCheckSameAsStd(t, fmt.Sprintf("doc %d with byte %d replaced", di, i), d)
			if t.Failed() {
				return
			}
		}
	}
}

// JSON nested deeper than encoding/json's limit (10000) is malformed, even in a skipped field.
func TestFastDecoderDepthLimit(t *testing.T) {
	for _, depth := range []int{9990, 9999, 10000, 10001, 10002} {
		// {"apps":[{"x": <value> }]}: the value opens at depth 4, so it nests depth-3 deep.
		n := depth - 3
		for name, value := range map[string]string{
			"arrays":  strings.Repeat("[", n) + strings.Repeat("]", n),
			"objects": strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1),
			"mixed":   strings.Repeat(`[{"a":`, n/2) + "1" + strings.Repeat("}]", n/2),
		} {
			in := `{"apps":[{"id":"/a","x":` + value + `}]}`
			if depth <= 10000 && !json.Valid([]byte(in)) || depth > 10000+1 && json.Valid([]byte(in)) {
				t.Fatalf("%s at depth %d: json.Valid = %t", name, depth, json.Valid([]byte(in)))
			}
			fastCheckSameAsStd(t, fmt.Sprintf("%s nested to depth %d", name, depth), []byte(in))
		}
	}
}

// fastRandomWire fills v with random values (and leaves some zero, nil or empty).
func fastRandomWire(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fastRandomString(r))
	case reflect.Int:
		v.SetInt([]int64{0, 1, -1, 80, 31000, 1<<63 - 1, -1 << 63, r.Int64() - r.Int64()}[r.IntN(8)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Map:
		if r.IntN(4) == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(4) {
			m.SetMapIndex(reflect.ValueOf(fastRandomString(r)), reflect.ValueOf(fastRandomString(r)))
		}
		v.Set(m)
	case reflect.Slice:
		if r.IntN(4) == 0 {
			return
		}
		s := reflect.MakeSlice(v.Type(), r.IntN(4), 3)
		for i := range s.Len() {
			fastRandomWire(r, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		if r.IntN(4) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fastRandomWire(r, p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if r.IntN(5) > 0 {
				fastRandomWire(r, v.Field(i))
			}
		}
	default:
		panic(v.Kind())
	}
}

func fastRandomString(r *rand.Rand) string {
	parts := []string{"", "a", "TASK_RUNNING", "tcp", "/app", "é", "\U0001F600", "\"", "\\", "\n", "\x01", "<&>", "\u2028",
		"\xff", "\xed\xa0\x80", "2017-07-19T17:34:41.967Z", "container/bridge", "BRIDGE"}
	var b strings.Builder
	for range r.IntN(4) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// The fast decoder fills every wire field as encoding/json does (including the ones
// convertApp ignores), for random apps.
func TestFastDecoderRandomWireApps(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 1000 {
		var w wireApp
		fastRandomWire(r, reflect.ValueOf(&w).Elem())
		data, err := json.Marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 { // Marathon's spelling of the untagged fields
			for _, k := range []string{"Mode", "Name", "Value", "ID"} {
				data = bytes.ReplaceAll(data, []byte(`"`+k+`":`), []byte(`"`+strings.ToLower(k)+`":`))
			}
		}
		var want, got wireApp
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		d := fastDec{data: data}
		if err := d.app(&got); err != nil || d.pos != len(data) {
			t.Fatalf("fast decoder: %v at %d of %s", err, d.pos, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("wire structs differ for %s\n got %+v\nwant %+v", data, got, want)
		}
		fastCheckSameAsStd(t, string(data), append(append([]byte(`{"apps":[`), data...), ']', '}'))
	}
}

// Documents of many random apps, some bad: nothing of one app (the decoder reuses its task
// array) may show in the next.
func TestFastDecoderRandomDocuments(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	bad := []string{`{"id":"/bad","instances":"x","tasks":[{"id":"t","host":"h","ports":[1]},{"id":"u"}]}`,
		`{"id":"/bad","tasks":[{"id":"t","host":"h","ports":[1]},{"id":"u","ports":"x"}]}`, `{"tasks":[{"id":"t"}],"tasks":[{"host":"h"}]}`}
	for range 100 {
		doc := []byte(`{"apps":[`)
		for i := range 1 + r.IntN(12) {
			if i > 0 {
				doc = append(doc, ',')
			}
			if r.IntN(6) == 0 {
				doc = append(doc, bad[r.IntN(len(bad))]...)
				continue
			}
			var w wireApp
			fastRandomWire(r, reflect.ValueOf(&w).Elem())
			if r.IntN(2) == 0 {
				w.Tasks = make([]wireTask, r.IntN(40))
				for j := range w.Tasks {
					fastRandomWire(r, reflect.ValueOf(&w.Tasks[j]).Elem())
				}
			}
			data, err := json.Marshal(&w)
			if err != nil {
				t.Fatal(err)
			}
			doc = append(doc, data...)
		}
		doc = append(doc, "]}"...)
		fastCheckSameAsStd(t, "random document", doc)
		if t.Failed() {
			return
		}
	}
}

// The 8-bytes-at-a-time string scans stop where the byte-at-a-time ones do.
func TestFastDecoderStopMasks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	interesting := []byte{'"', '\\', 0, 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xff, 'a', 0xa2, 0xdc, 0x22 ^ 0x80}
	first := func(w []byte, stop *[256]bool) int {
		for i, c := range w {
			if stop[c] {
				return i
			}
		}
		return 8
	}
	fromMask := func(m uint64) int {
		if m == 0 {
			return 8
		}
		return bits.TrailingZeros64(m) >> 3
	}
	w := make([]byte, 8)
	for n := range 300_000 {
		for i := range w {
			if n%2 == 0 {
				w[i] = interesting[r.IntN(len(interesting))]
			} else {
				w[i] = byte(r.IntN(256))
			}
		}
		x := binary.LittleEndian.Uint64(w)
		if got, want := fromMask(strStopMask(x)), first(w, &strStop); got != want {
			t.Fatalf("strStopMask(% x) stops at %d, want %d", w, got, want)
		}
		if got, want := fromMask(skipStopMask(x)), first(w, &skipStop); got != want {
			t.Fatalf("skipStopMask(% x) stops at %d, want %d", w, got, want)
		}
	}
}

func FuzzDecodeMarathonApps(f *testing.F) {
	for _, data := range fastFixtureFiles(f) {
		f.Add(data)
	}
	for _, in := range fastEdgeCases {
		f.Add([]byte(in))
	}
	f.Add(marathonAppsJSON(3, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast decoder gives the same results as encoding/json for every input: apps,
		// app errors and document errors (it hands encoding/json what it is not sure about).
		fastCheckSameAsStd(t, "fuzz", data)
	})
}

// BenchmarkMarathonDecoders compares the fast decoder with the encoding/json reference on
// BenchmarkFullSync10kApps' payload (decode only).
func BenchmarkMarathonDecoders(b *testing.B) {
	data := marathonAppsJSON(10_000, 3)
	for _, dec := range []struct {
		name   string
		decode func([]byte) ([]*App, []error, error)
	}{{"std", decodeMarathonAppsStd}, {"fast", decodeMarathonAppsFast}} {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if apps, appErrs, err := dec.decode(data); err != nil || len(appErrs) > 0 || len(apps) != 10_000 {
					b.Fatal(len(apps), appErrs, err)
				}
			}
		})
	}
}

// versionInfo.lastConfigChangeAt decides who holds a contested route on a cold start: both
// decoders read it alike, and a value that is not an RFC 3339 time is "unknown" (zero), never
// a time that could make a hostile app the oldest.
func TestConfigChangedAt(t *testing.T) {
	for _, c := range []struct {
		versionInfo string
		want        time.Time
	}{
		{`{"lastScalingAt":"2019-01-01T00:00:00Z","lastConfigChangeAt":"2017-07-19T17:34:41.967Z"}`, time.Date(2017, 7, 19, 17, 34, 41, 967e6, time.UTC)},
		{`{"lastConfigChangeAt":"2017-07-19T19:34:41+02:00"}`, time.Date(2017, 7, 19, 17, 34, 41, 0, time.UTC)},
		{`{}`, time.Time{}},
		{`null`, time.Time{}},
		{`{"lastConfigChangeAt":"yesterday"}`, time.Time{}},
		{`{"lastConfigChangeAt":"0001-01-01T00:00:00Z\n  http-request deny"}`, time.Time{}},
		{`{"lastConfigChangeAt":""}`, time.Time{}},
	} {
		doc := `{"apps":[{"id":"/a","versionInfo":` + c.versionInfo + `}]}`
		fastCheckNoFallback(t, doc, []byte(doc))
		fastCheckSameAsStd(t, doc, []byte(doc))
		apps, _, err := DecodeMarathonApps([]byte(doc))
		if err != nil || len(apps) != 1 {
			t.Fatalf("%s: %v %v", doc, apps, err)
		}
		if !apps[0].ConfigChangedAt.Equal(c.want) {
			t.Errorf("%s: ConfigChangedAt %v, want %v", c.versionInfo, apps[0].ConfigChangedAt, c.want)
		}
	}
	// A wrong type is the app's error, from both decoders.
	doc := `{"apps":[{"id":"/a","versionInfo":{"lastConfigChangeAt":5}},{"id":"/b"}]}`
	fastCheckSameAsStd(t, doc, []byte(doc))
	apps, appErrs, _ := DecodeMarathonApps([]byte(doc))
	if len(apps) != 1 || len(appErrs) != 1 {
		t.Errorf("a number as lastConfigChangeAt: %d apps, %v", len(apps), appErrs)
	}
}

// Equal sees a changed lastConfigChangeAt, so the registry does not drop the update.
func TestEqualSeesConfigChangedAt(t *testing.T) {
	a := &App{ID: "/a", ConfigChangedAt: time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := *a
	b.ConfigChangedAt = b.ConfigChangedAt.Add(time.Second)
	if a.Equal(&b) {
		t.Error("apps with different ConfigChangedAt are Equal")
	}
}
