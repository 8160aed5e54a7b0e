package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// mesosCheckSameAsStd fails t unless DecodeMesosState (the fast decoder, or its fallback) and
// the encoding/json reference return deeply equal states and the same error for data.
func mesosCheckSameAsStd(t testing.TB, name string, data []byte) {
	t.Helper()
	fast, ferr := DecodeMesosState(data)
	std, serr := decodeMesosStateStd(data)
	if reflect.DeepEqual(fast, std) && fmt.Sprint(ferr) == fmt.Sprint(serr) {
		return
	}
	in := string(data)
	if len(in) > 2000 {
		in = in[:2000] + "…"
	}
	fj, _ := json.MarshalIndent(fast, "", " ")
	sj, _ := json.MarshalIndent(std, "", " ")
	t.Errorf("%s: fast decoder differs from encoding/json\ninput: %q\nfast: %s (error %v)\n std: %s (error %v)", name, in, fj, ferr, sj, serr)
}

// mesosCheckNoFallback fails t unless the fast decoder decodes data by itself.
func mesosCheckNoFallback(t testing.TB, name string, data []byte) {
	t.Helper()
	if _, ok := decodeMesosStateFast(data); !ok {
		t.Errorf("%s: fast decoder fell back to encoding/json", name)
	}
}

func TestMesosFastFixture(t *testing.T) {
	data := readFixture(t, "state_fake.json")
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "\r\n", "\t "); err != nil {
		t.Fatal(err)
	}
	for variant, d := range map[string][]byte{"": data, " compact": compact.Bytes(), " indented": indented.Bytes()} {
		mesosCheckNoFallback(t, "state_fake.json"+variant, d)
		mesosCheckSameAsStd(t, "state_fake.json"+variant, d)
	}
}

func TestMesosFastGeneratedStates(t *testing.T) {
	for _, o := range []mesosStateOpts{
		{apps: 50, tasksPerApp: 10, bigApp: 30, agents: 7, otherFrameworks: 3},
		{apps: 3, tasksPerApp: 1, agents: 1},
		{agents: 5},
		{otherFrameworks: 2},
		{apps: 40, tasksPerApp: 30, bigApp: 300, agents: 300, otherFrameworks: 1}, // past the slabs' largest size
	} {
		data := mesosStateDoc(o)
		mesosCheckNoFallback(t, fmt.Sprintf("%+v", o), data)
		mesosCheckSameAsStd(t, fmt.Sprintf("%+v", o), data)
	}
}

// mesosEdgeCases are documents the fast decoder must decode exactly like encoding/json (also
// the seed corpus of FuzzDecodeMesosState).
var mesosEdgeCases = []string{
	// Shapes, and documents that are not a Mesos state.
	`{}`, `null`, `[]`, `"x"`, `5`, ``, ` `, `{"leader":""}`, `{"leader":null}`, `{"frameworks":null}`, `{"slaves":null}`,
	`{"frameworks":[]}`, `{"slaves":[]}`, `{"leader":"x","slaves":null,"frameworks":null}`, `{"leader":"master@1.2.3.4:5050"}`,
	`{"apps":[]}`, `{"frameworks":[null]}`, `{"frameworks":[{}]}`, `{"slaves":[null,{}]}`, `{"frameworks":[],"slaves":[],"leader":""}`,
	// Leader.
	`{"leader":"master@1.2.3.4:5050","leader_info":null}`, `{"leader":"master@1.2.3.4:5050","leader_info":{}}`,
	`{"leader":"master@1.2.3.4:5050","leader_info":{"address":null}}`, `{"leader":"master@1.2.3.4:5050","leader_info":{"address":{}}}`,
	`{"leader":"master@1.2.3.4:5050","leader_info":{"address":{"ip":"10.0.0.1"}}}`, `{"leader":"m@[::1]:5050","leader_info":{"hostname":"h","port":5050,"address":{"ip":"::1","port":5050}}}`,
	`{"leader":"m@1.2.3.4:5050","leader_info":{"address":{"port":5050}}}`, `{"leader":"no-at-sign"}`, `{"leader":"a@b@c"}`,
	`{"leader":"m","leader_info":{"port":"5050"}}`, `{"leader":"m","leader_info":{"address":{"port":1.5}}}`, `{"leader":"m","leader_info":{"hostname":5}}`,
	`{"leader":"m","leader_info":{"address":{"ip":5}}}`, `{"leader":"m","leader_info":[]}`, `{"leader":"m","leader_info":{"address":"1.2.3.4"}}`,
	`{"leader":5}`, `{"hostname":["h"],"leader":"m"}`,
	// Agents.
	`{"slaves":[{"id":"S1","hostname":"h1","pid":"slave(1)@1.2.3.4:5051","resources":{"ports":"[1-2]"}},{"id":"S2"},{"id":null,"hostname":null,"pid":null}]}`,
	`{"slaves":[5]}`, `{"slaves":{}}`, `{"slaves":[{"id":1}]}`, `{"slaves":[{"pid":true}]}`,
	// Frameworks and tasks.
	`{"frameworks":[{"id":"f","name":"n","pid":"p","hostname":"h","tasks":null}]}`, `{"frameworks":[{"tasks":[]}]}`,
	`{"frameworks":[{"tasks":[null]}]}`, `{"frameworks":[{"tasks":[{}]}]}`, `{"frameworks":{}}`, `{"frameworks":[{"tasks":{}}]}`,
	`{"frameworks":[{"tasks":[5]}]}`, `{"frameworks":[{"name":5}]}`, `{"frameworks":[{"tasks":[{"id":5}]}]}`,
	`{"frameworks":[{"id":"f1","tasks":[{"id":"a","framework_id":"f1"},{"id":"b","framework_id":"f2"},{"id":"c","framework_id":"f1"},{"id":"d","framework_id":null}]},` +
		`{"id":"f2","tasks":[{"id":"e","framework_id":"f2","slave_id":"S1","state":"TASK_RUNNING"},{"id":"f","name":"x","state":"TASK_WEIRD"},{"id":"g","name":"x"},{"id":"h"}]}]}`,
	// Ports resources.
	`{"frameworks":[{"tasks":[{"resources":null},{"resources":{}},{"resources":{"ports":null}},{"resources":{"ports":""}},{"resources":{"ports":"[]"}}]}]}`,
	`{"frameworks":[{"tasks":[{"resources":{"ports":" [31000-31000] "}},{"resources":{"ports":"[1-3,5-5]"}},{"resources":{"ports":"[1-3,5-5]"}},{"resources":{"ports":"[1-3,\u0035-5]"}}]}]}`,
	`{"frameworks":[{"tasks":[{"resources":{"ports":"0-0, 65535-65535","cpus":1,"mem":1024.5,"disk":0}}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","resources":{"ports":"[3-1]"}}]}]}`, `{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":"[x]"}}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":"[0-70000]"}}]}]}`, `{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":"[1-20000]"}}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":5}}]}]}`, `{"frameworks":[{"tasks":[{"id":"t","resources":"x"}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":"[1-2]"}},{"id":"u","resources":{"ports":"[1-2],"}}]}]}`,
	// Labels, in both shapes.
	`{"frameworks":[{"tasks":[{"labels":null},{"labels":[]},{"labels":[null]},{"labels":[{}]},{"labels":[{"key":"a"}]},{"labels":[{"key":null,"value":null}]}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":{"labels":[]}},{"labels":{"labels":null}},{"labels":{}},{"labels":{"labels":[{"Key":"a","VALUE":"b"}],"x":1}},{"labels":{"Labels":[{"key":"c"}]}}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":"x"}]}]}`, `{"frameworks":[{"tasks":[{"labels":5}]}]}`, `{"frameworks":[{"tasks":[{"labels":true}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":{"labels":"x"}}]}]}`, `{"frameworks":[{"tasks":[{"labels":[{"key":5}]}]}]}`, `{"frameworks":[{"tasks":[{"labels":[5]}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":[{"key":"a","key":"b"}]}]}]}`, `{"frameworks":[{"tasks":[{"labels":[{"key":"a","Key":"b"}]}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":{"labels":[{"key":"a"}],"labels":[{"value":"b"}]}}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":[{"key":"a","value":"1","extra":{"x":[]}},{"key":"a","value":"2"}]}]}]}`,
	// Statuses and timestamps.
	`{"frameworks":[{"tasks":[{"statuses":null},{"statuses":[]},{"statuses":[null]},{"statuses":[{}]},{"statuses":[{"timestamp":null,"state":null,"labels":null,"container_status":null}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":0},{"timestamp":-0},{"timestamp":-0.0},{"timestamp":1e3},{"timestamp":1.5e-3},{"timestamp":1507139816.34576},{"timestamp":0.1}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":123456789012345678901234567890},{"timestamp":9007199254740993},{"timestamp":9007199254740992.5},{"timestamp":1.7976931348623157e308}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":4.9e-324},{"timestamp":1e-400},{"timestamp":0.0000000000000000000001},{"timestamp":0.00000000000000000000001},{"timestamp":1500000000.123456}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":1e400}]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"timestamp":-1e400}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":"1"}]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"timestamp":true}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":01}]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"timestamp":1.}]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"timestamp":-}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"state":"TASK_RUNNING","labels":[{"key":"k","value":"v"}]},{"state":"TASK_FAILED","labels":{"labels":[{"key":"k2"}]}}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":{}}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[5]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"state":1}]}]}]}`,
	// Container network addresses.
	`{"frameworks":[{"tasks":[{"statuses":[{"container_status":{}},{"container_status":{"network_infos":null}},{"container_status":{"network_infos":[]}},{"container_status":{"network_infos":[null,{}]}}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"container_status":{"network_infos":[{"ip_addresses":[null,{},{"ip_address":null},{"ip_address":""},{"ip_address":"1.2.3.4","protocol":"IPv4"}]},` +
		`{"name":"n","ip_addresses":[{"ip_address":"fd01::1"},{"ip_address":"5.6.7.8"}]}],"container_id":{"value":"c"}}},{"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"9.9.9.9"}]}]}}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":5}]}]}}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"container_status":{"network_infos":{}}}]}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"container_status":[]}]}]}]}`,
	`{"frameworks":[{"tasks":[{"statuses":[{"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"1.1.1.1","ip_address":"2.2.2.2"}]}]}}]}]}]}`,
	// DiscoveryInfo.
	`{"frameworks":[{"tasks":[{"name":"a","discovery":null},{"name":"a","discovery":{}},{"discovery":{"name":null}},{"discovery":{"ports":null}},{"discovery":{"ports":{}}}]}]}`,
	`{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":null}}},{"discovery":{"ports":{"ports":[]}}},{"discovery":{"ports":{"ports":[null,{}]}}}]}]}`,
	`{"frameworks":[{"tasks":[{"name":"web","discovery":{"name":"web","visibility":"FRAMEWORK","ports":{"ports":[{"number":80,"protocol":"tcp","name":"http","labels":{"labels":[]}},{"number":443,"name":"https"}]}}},` +
		`{"name":"web","discovery":{"name":"other","ports":{"ports":[{"number":53,"protocol":"udp","name":"dns"}]}}},{"discovery":{"name":"web"},"name":"web"}]}]}`,
	`{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":"80"}]}}}]}]}`, `{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":80.0}]}}}]}]}`,
	`{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":1e2}]}}}]}]}`, `{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":99999999999999999999}]}}}]}]}`,
	`{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":-9223372036854775808}]}}}]}]}`, `{"frameworks":[{"tasks":[{"discovery":[]}]}]}`,
	`{"frameworks":[{"tasks":[{"discovery":{"ports":[]}}]}]}`, `{"frameworks":[{"tasks":[{"discovery":"x"}]}]}`,
	// Keys in another case, which encoding/json matches, and keys it matches after unescaping or Unicode folding.
	`{"LEADER":"m@1.2.3.4:5050","Frameworks":[{"Tasks":[{"ID":"t","Slave_Id":"s","STATUSES":[{"Container_Status":{"Network_Infos":[{"IP_ADDRESSES":[{"Ip_Address":"1.2.3.4"}]}]}}]}]}]}`,
	`{"frameworks":[{"tasks":[{"labels":[{"KEY":"k","vAlUe":"v"}],"Discovery":{"PORTS":{"Ports":[{"NUMBER":1,"Name":"n","PROTOCOL":"tcp"}]}}}]}]}`,
	`{"le\u0061der":"m@1.2.3.4:5050"}`, `{"leader":"m","fr\u0061meworks":[{"id":"f"}]}`, `{"ſlaves":[{"id":"S1"}]}`, `{"leader":"m","frameworks":[{"tasKs":[]}]}`,
	`{"leader":"m","frameworks":[{"ta\u212As":[{"id":"t"}]}]}`, "{\"leader\":\"m\",\"frameworks\":[{\"ta\xe2\x84\xaas\":[{\"id\":\"t\"}]}]}", `{"leader":"m","é":1,"x\"y":[]}`,
	// Repeated keys, which encoding/json decodes into what the first one left.
	`{"leader":"a","leader":"b"}`, `{"leader":"a","leader":null}`, `{"frameworks":[{"id":"x","tasks":[{"id":"t"}]}],"frameworks":[{"name":"y"}]}`,
	`{"slaves":[{"id":"a"},{"id":"b"}],"slaves":null}`, `{"slaves":[{"id":"a"}],"SLAVES":[{"hostname":"h"}]}`,
	`{"frameworks":[{"tasks":[{"id":"a","statuses":[{"state":"S","timestamp":1}],"statuses":[{"timestamp":2}]}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"a","resources":{"ports":"[1-2]"},"resources":{"cpus":1}}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"a","discovery":{"name":"d","ports":{"ports":[{"number":1}]}},"discovery":{"ports":{"ports":[{"name":"n"}]}}}]}]}`,
	`{"frameworks":[{"tasks":[{"id":"a","labels":[{"key":"k"}],"labels":null}]}]}`, `{"leader":"m","leader_info":{"address":{"ip":"1.1.1.1"},"address":{"port":1}}}`,
	// Escapes, Unicode and invalid UTF-8 in values.
	`{"leader":"m@1.2.3.4:5050","hostname":"\u00e9\ud83d\ude00\u2028\"\\\/\b\f\n\r\t","frameworks":[{"name":"caf\u00e9","tasks":[{"id":"t\u0000","name":"\ud800","labels":[{"key":"\udc00x","value":"\ud83d"}]}]}]}`,
	"{\"leader\":\"m\xff\",\"frameworks\":[{\"name\":\"\xc3\",\"tasks\":[{\"id\":\"t\xc3\xa9\",\"state\":\"\xed\xa0\x80\",\"labels\":[{\"key\":\"\xfe\",\"value\":\"ok\xe2\x82\xac\"}]}]}]}",
	`{"frameworks":[{"tasks":[{"name":"a\u0062","discovery":{"name":"ab"}},{"name":"ab","discovery":{"name":"a\u0062"}},{"slave_id":"S\u0031","state":"TASK_\u0052UNNING"}]}]}`,
	// Unknown fields of every type, nested, and numbers in them.
	`{"x":{"a":[1,{"b":null},true,false,"s",-1.5e-3,[],{}],"c":{"d":{"e":[[[]]]}}},"leader":"m","y":[{"z":0}],` +
		`"n":[1e3,-0,1.0,0.5E+10,-0.0,1E-2,123456789012345678901234567890,-1e400],"frameworks":[{"tasks":[{"id":"t","extra":{"id":5}}],"w":"\"}]"}],"more":[{"leader":1}]}`,
	// Whitespace variety.
	"\t\r\n {\r\n\t\"leader\" \t:\n\"m\" ,\n\"frameworks\" : [ { \"tasks\" : [ { \"id\" : \"t\" , \"labels\" : [ { \"key\" : \"k\" } ] , \"statuses\" : [ { \"timestamp\" : 1.5 } , null ] } , null ] } ] \n}\n\t ",
	"\v{\"leader\":\"m\"}\f", "\u00a0{\"leader\":\"m\"}", "{\"leader\":\"m\"}\u0085",
	// Not well-formed.
	`{"leader":`, `{"leader":"m",}`, `{"leader":"m"}}`, `{"leader":"m"} x`, `{"leader":"m"}{}`, `{"leader":"m","frameworks":[}`,
	`{"leader":"m","frameworks":[{"tasks":[{"id":"t"},]}]}`, `{"leader":"m","x":tru}`, `{"leader":"m","x":nul}`, `{"leader":"m","x":"\x"}`,
	`{"leader":"m","x":"\u12g4"}`, "{\"leader\":\"m\nb\"}", "{\"leader\":\"m\x00\"}", `{"leader":"m","x":01}`, `{"leader":"m","x":1.e3}`,
	`{"leader":"m","x":[1 2]}`, `{"leader":"m","x":{"a" 1}}`, `{"leader":"m","x":{1:2}}`, `{"leader" "m"}`, `{,"leader":"m"}`, `{"leader"`,
	"\xef\xbb\xbf{\"leader\":\"m\"}", `{'leader':'m'}`, `}`, `]`, `{"leader":"m","frameworks":[{"tasks":[{"labels":[{"key":"k"]}]}]}`,
	`{"leader":"m","frameworks":[{"tasks":[{"statuses":[{"timestamp":1e}]}]}]}`, `{"leader":"m","frameworks":[{"tasks":[{"statuses":[{"timestamp":1.5.5}]}]}]}`,
	`{"leader":"m","frameworks":[{"tasks":[{"resources":{"ports":"[1-2]}}]}]}`,
}

func TestMesosFastEdgeCases(t *testing.T) {
	for i, in := range mesosEdgeCases {
		mesosCheckSameAsStd(t, fmt.Sprintf("case %d", i), []byte(in))
	}
}

// The fast decoder must decode the shapes Mesos writes itself, and the harmless variations
// of them, without handing them to encoding/json.
func TestMesosFastHandlesCommonShapes(t *testing.T) {
	for _, in := range []string{
		`{"leader":"master@1.2.3.4:5050"}`, `{"frameworks":[]}`, `{"slaves":[]}`, `{"frameworks":[null],"slaves":[null]}`,
		`{"leader":"m","leader_info":{"hostname":"h","port":5050,"address":{"ip":"::1","port":5050}}}`,
		`{"frameworks":[{"tasks":[{"labels":[]},{"labels":{"labels":[{"key":"k","value":"v"}]}},{"labels":null},{"labels":{}}]}]}`,
		`{"frameworks":[{"tasks":[{"id":"t\u00e9\"","name":"caf\u00e9","resources":{"ports":"[1-2]"}},{"resources":{"ports":"[1-2]"}},{"resources":{"ports":"[1-\u0032]"}}]}]}`,
		`{"FRAMEWORKS":[{"Tasks":[{"ID":"t","Labels":[{"KEY":"k","Value":"v"}]}]}]}`,
		`{"leader":"m","x":{"y":[1,-2.5e3,true,null,"\u00e9"]},"frameworks":[{"x":[{}],"tasks":[{"y":{"id":5},"statuses":[{"z":"\""}]}]}]}`,
		`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":123456789012345678901234567890},{"timestamp":1.5e-3},{"timestamp":-0}]}]}]}`,
		"{\"leader\":\"caf\xc3\xa9\xff\"}", "\n{\"leader\":\"m\"}\n",
	} {
		mesosCheckNoFallback(t, in, []byte(in))
		mesosCheckSameAsStd(t, in, []byte(in))
	}
}

// What encoding/json decodes in ways of its own (repeated keys), keys the fast decoder does
// not unescape or fold, and every error go to decodeMesosStateStd: its result, error message
// included, is DecodeMesosState's.
func TestMesosFastFallsBack(t *testing.T) {
	for _, in := range []string{
		`{"leader":"a","leader":"b"}`, `{"frameworks":[{"id":"x"}],"frameworks":[{"name":"y"}]}`, `{"leader":"m","Leader":"n"}`,
		`{"le\u0061der":"m"}`, `{"ſlaves":[]}`, `{"leader":"m","é":1}`, `{}`, `null`, `[]`, `{"leader":5}`, `{"leader":"m"`, `{"leader":"m"} x`,
		`{"frameworks":[{"tasks":[{"id":"t","resources":{"ports":"[2-1]"}}]}]}`, `{"frameworks":[{"tasks":[{"statuses":[{"timestamp":1e400}]}]}]}`,
		`{"frameworks":[{"tasks":[{"labels":"x"}]}]}`,
	} {
		if _, ok := decodeMesosStateFast([]byte(in)); ok {
			t.Errorf("%s: decoded by the fast decoder, want it left to encoding/json", in)
		}
		mesosCheckSameAsStd(t, in, []byte(in))
	}
}

// DecodeMesosState's errors say what is wrong and where.
func TestMesosFastErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":"x"}]}]}]}`, "cannot unmarshal string into Go struct field .frameworks.tasks.statuses.timestamp of type float64"},
		{`{"frameworks":[{"tasks":[{"statuses":[{"timestamp":1e400}]}]}]}`, "cannot unmarshal number 1e400 into Go struct field .frameworks.tasks.statuses.timestamp of type float64"},
		{`{"frameworks":[{"tasks":[{"discovery":{"ports":{"ports":[{"number":"80"}]}}}]}]}`, "Go struct field .frameworks.tasks.discovery.ports.ports.number of type int"},
		{`{"slaves":[{"id":1}]}`, "Go struct field .slaves.id of type string"},
		{`{"frameworks":[{"name":"marathon","tasks":[{"id":"web.1","resources":{"ports":"[31002-31000]"}}]}]}`, `framework "marathon", task web.1: ports resource "31002-31000": bad range`},
		{`{"frameworks":[{"name":"marathon","tasks":[{"id":"web.1","labels":[{"key":5}]}]}]}`, `framework "marathon", task web.1: labels: json: cannot unmarshal number`},
		{`{"leader":"m","frameworks":[{"tasks":[}]}`, "malformed Mesos state JSON: invalid character '}'"},
		{`{"flags":{}}`, "not a Mesos master state"},
	} {
		st, err := DecodeMesosState([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) || st != nil {
			t.Errorf("%s: state %v, error %v; want an error containing %q", tt.in, st, err, tt.want)
		}
	}
}

// Every prefix of a document, and the document with one byte replaced, decode as with
// encoding/json.
func TestMesosFastDamagedInput(t *testing.T) {
	docs := [][]byte{
		mesosStateDoc(mesosStateOpts{apps: 1, tasksPerApp: 1, agents: 1, otherFrameworks: 1}),
		[]byte(`{"leader":"m@1.2.3.4:5050","leader_info":{"address":{"ip":"1.2.3.4","port":5050}},"slaves":[{"id":"S1"}],"frameworks":[{"id":"f","tasks":[` +
			`{"id":"t","state":"TASK_RUNNING","resources":{"ports":"[1-2]"},"labels":{"labels":[{"key":"k","value":"v\u00e9"}]},"statuses":[{"timestamp":1.5,` +
			`"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"1.2.3.4"}]}]}}],"discovery":{"name":"d","ports":{"ports":[{"number":1}]}},"x":[1e3,true]}]}]}`),
	}
	replacements := []byte("\"\\{}[]:,0-.eE+ntf\x00\x1f\x80\xff aZ")
	r := rand.New(rand.NewPCG(11, 12))
	for di, doc := range docs {
		for n := 0; n < len(doc); n += 1 + n/300 {
			mesosCheckSameAsStd(t, fmt.Sprintf("doc %d truncated at %d", di, n), doc[:n])
		}
		for range 1000 {
			i := r.IntN(len(doc))
			d := bytes.Clone(doc)
			d[i] = replacements[r.IntN(len(replacements))]
			mesosCheckSameAsStd(t, fmt.Sprintf("doc %d with byte %d replaced", di, i), d)
			if t.Failed() {
				return
			}
		}
	}
}

// JSON nested deeper than encoding/json's limit (10000) is malformed, even in a skipped field.
func TestMesosFastDepthLimit(t *testing.T) {
	for _, depth := range []int{9999, 10000, 10001} {
		// {"frameworks":[{"x": <value> }]}: the value opens at depth 4.
		n := depth - 3
		for name, value := range map[string]string{
			"arrays":  strings.Repeat("[", n) + strings.Repeat("]", n),
			"objects": strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1),
		} {
			in := `{"frameworks":[{"x":` + value + `}]}`
			mesosCheckSameAsStd(t, fmt.Sprintf("%s nested to depth %d", name, depth), []byte(in))
		}
	}
}

// mesosRandomDoc writes a random Mesos state: every field of the wire types, present or
// not, null or not, in random order and key case, among unknown fields; with bad values
// (wrong types, bad ports ranges, repeated keys) once in a while when bad is set.
type mesosRandomDoc struct {
	r   *rand.Rand
	b   []byte
	bad bool
}

func (g *mesosRandomDoc) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *mesosRandomDoc) ws() {
	if g.chance(8) {
		g.b = append(g.b, " \n\t\r"[g.r.IntN(4)])
	}
}

func (g *mesosRandomDoc) str(s string) {
	g.b, _ = appendJSON(g.b, s)
}

func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// value writes a random value of type t.
func (g *mesosRandomDoc) value(t reflect.Type) {
	g.ws()
	if g.bad && g.chance(300) {
		g.b = append(g.b, []string{`5`, `"x"`, `[]`, `{}`, `true`, `1.5`}[g.r.IntN(6)]...)
		return
	}
	if g.chance(12) {
		g.b = append(g.b, "null"...)
		return
	}
	switch t.Kind() {
	case reflect.Slice:
		if t == reflect.TypeFor[json.RawMessage]() { // labels, in either shape
			switch g.r.IntN(5) {
			case 0:
				g.object(reflect.TypeFor[wireLabels]())
			case 1:
				g.b = append(g.b, "[]"...)
			default:
				g.list(reflect.TypeFor[Label](), 1+g.r.IntN(3))
			}
			return
		}
		g.list(t.Elem(), g.r.IntN(4))
	case reflect.Pointer:
		g.object(t.Elem())
	case reflect.Struct:
		g.object(t)
	case reflect.String:
		g.str(fastRandomString(g.r))
	case reflect.Int:
		g.b = strconv.AppendInt(g.b, []int64{0, 1, -1, 80, 31000, math.MaxInt64, math.MinInt64, g.r.Int64N(1 << 40)}[g.r.IntN(8)], 10)
	case reflect.Float64:
		num := randomJSONNumber(g.r)
		for _, err := strconv.ParseFloat(num, 64); err != nil && !g.bad; _, err = strconv.ParseFloat(num, 64) {
			num = randomJSONNumber(g.r) // out of range: an error
		}
		g.b = append(g.b, num...)
	default:
		panic(t)
	}
}

// ports writes a ports resource, or null.
func (g *mesosRandomDoc) ports() {
	if g.chance(12) {
		g.b = append(g.b, "null"...)
		return
	}
	ranges := []string{"", "[]", "[31000-31000]", "[31000-31002, 31005-31005]", " [1-2,3-3] ", "80", "[0-0]", "[65535-65535]"}
	if g.bad && g.chance(20) {
		ranges = []string{"[2-1]", "x", "[1-70000]", "[-1-2]", "[1-20000]"}
	}
	g.str(ranges[g.r.IntN(len(ranges))])
}

func (g *mesosRandomDoc) list(elem reflect.Type, n int) {
	g.b = append(g.b, '[')
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		if g.chance(10) {
			g.b = append(g.b, "null"...)
			continue
		}
		g.value(elem)
	}
	g.ws()
	g.b = append(g.b, ']')
}

// object writes an object for struct type t.
func (g *mesosRandomDoc) object(t reflect.Type) {
	g.b = append(g.b, '{')
	type field struct {
		name string
		t    reflect.Type
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if !g.chance(6) {
			fields = append(fields, field{name, f.Type})
		}
		if g.bad && g.chance(100) {
			fields = append(fields, field{name, f.Type}) // a repeated key
		}
	}
	for range g.r.IntN(3) {
		fields = append(fields, field{[]string{"x", "active", "completed_tasks", "executor_id", "ids", "state_", "Sla"}[g.r.IntN(7)], nil})
	}
	g.r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	for i, f := range fields {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		key := f.name
		if g.chance(30) {
			key = strings.ToUpper(key)
		}
		g.ws()
		g.str(key)
		g.ws()
		g.b = append(g.b, ':')
		if f.t == nil {
			g.unknown(3)
			continue
		}
		if t == reflect.TypeFor[wireResources]() {
			g.ports()
			continue
		}
		g.value(f.t)
	}
	g.ws()
	g.b = append(g.b, '}')
}

// unknown writes a random JSON value.
func (g *mesosRandomDoc) unknown(depth int) {
	switch k := g.r.IntN(7); {
	case k == 0 && depth > 0:
		g.b = append(g.b, '[')
		for i := range g.r.IntN(3) {
			if i > 0 {
				g.b = append(g.b, ',')
			}
			g.unknown(depth - 1)
		}
		g.b = append(g.b, ']')
	case k == 1 && depth > 0:
		g.b = append(g.b, '{')
		for i := range g.r.IntN(3) {
			if i > 0 {
				g.b = append(g.b, ',')
			}
			g.str(fastRandomString(g.r))
			g.b = append(g.b, ':')
			g.unknown(depth - 1)
		}
		g.b = append(g.b, '}')
	case k == 2:
		g.b = append(g.b, randomJSONNumber(g.r)...)
	case k == 3:
		g.b = append(g.b, []string{"true", "false", "null"}[g.r.IntN(3)]...)
	default:
		g.str(fastRandomString(g.r))
	}
}

// randomJSONNumber returns a well-formed JSON number, often one a timestamp could be.
func randomJSONNumber(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return strconv.FormatFloat(r.Float64()*2e9, 'f', r.IntN(8), 64)
	case 1:
		return strconv.FormatFloat(math.Float64frombits(r.Uint64()), 'g', -1, 64)
	case 2:
		return strconv.FormatInt(r.Int64()>>r.IntN(64), 10)
	case 3:
		return []string{"-0", "0.0", "1e400", "-1e400", "1e-400", "4.9e-324", "9007199254740993", "0.1", "1E+2", "-12.5e-1"}[r.IntN(10)]
	case 4:
		digits := make([]byte, 1+r.IntN(25))
		for i := range digits {
			digits[i] = byte('0' + r.IntN(10))
		}
		digits[0] = byte('1' + r.IntN(9))
		s := string(digits)
		if p := r.IntN(len(s) + 1); p < len(s) && p > 0 {
			s = s[:p] + "." + s[p:]
		}
		return s
	}
	return strconv.FormatFloat(float64(r.IntN(1e6))/float64(1+r.IntN(1000)), 'f', -1, 64)
}

// Random states, with and without bad values, decode as with encoding/json.
func TestMesosFastRandomStates(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	var fallbacks [2]int // clean, bad
	const n = 2000
	for i := range n {
		g := mesosRandomDoc{r: r, bad: i%2 == 1}
		g.object(reflect.TypeFor[wireMesosState]())
		if _, ok := decodeMesosStateFast(g.b); !ok {
			fallbacks[i%2]++
		}
		mesosCheckSameAsStd(t, "random state", g.b)
		if t.Failed() {
			return
		}
	}
	// The clean states are decoded by the fast decoder, save the odd one that is not a Mesos
	// state (no leader, frameworks or slaves); the bad ones are left to encoding/json.
	t.Logf("fell back: %d clean states, %d bad ones, of %d each", fallbacks[0], fallbacks[1], n/2)
	if fallbacks[0] > n/2/20 || fallbacks[1] < n/2/10 {
		t.Errorf("fell back: %d clean states, %d bad ones, of %d each", fallbacks[0], fallbacks[1], n/2)
	}
}

// exactDecimal agrees with strconv.ParseFloat whenever it answers.
func TestExactDecimal(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	answered := 0
	for i := range 200_000 {
		s := randomJSONNumber(r)
		if i%2 == 0 {
			s = "-" + strings.TrimPrefix(s, "-")
		}
		want, err := strconv.ParseFloat(s, 64)
		got, ok := exactDecimal([]byte(s))
		if !ok {
			continue
		}
		answered++
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("exactDecimal(%s) = %v, ParseFloat: %v, %v", s, got, want, err)
		}
	}
	for _, s := range []string{"1507139816.34576", "1500000000.123456", "9007199254740992", "0.000000000000001", "-0", "0"} {
		if _, ok := exactDecimal([]byte(s)); !ok {
			t.Errorf("exactDecimal(%s) does not answer", s)
		}
	}
	if answered < 50_000 {
		t.Errorf("exactDecimal answered for %d numbers only", answered)
	}
}

// The state's slices share arrays (slabs, and the ports of tasks with the same resource),
// but appending to one never changes another: each one's capacity is its length.
func TestMesosFastSlicesAreClipped(t *testing.T) {
	st, err := DecodeMesosState(mesosStateDoc(mesosStateOpts{apps: 100, tasksPerApp: 10, bigApp: 5, agents: 3, otherFrameworks: 2}))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, l, c int) {
		if l != c {
			t.Fatalf("%s: length %d, capacity %d", what, l, c)
		}
	}
	for _, fw := range st.Frameworks {
		check("tasks", len(fw.Tasks), cap(fw.Tasks))
		for _, task := range fw.Tasks {
			check("ports", len(task.Ports), cap(task.Ports))
			check("labels", len(task.Labels), cap(task.Labels))
			check("statuses", len(task.Statuses), cap(task.Statuses))
			for _, s := range task.Statuses {
				check("status labels", len(s.Labels), cap(s.Labels))
				check("network IPs", len(s.NetworkIPs), cap(s.NetworkIPs))
			}
			if task.Discovery != nil {
				check("discovery ports", len(task.Discovery.Ports), cap(task.Discovery.Ports))
			}
		}
	}
	// Tasks 0 and 997 have the same ports resource; neither sees an append to the other.
	a, b := &st.Frameworks[0].Tasks[0], &st.Frameworks[0].Tasks[997]
	if !reflect.DeepEqual(a.Ports, b.Ports) {
		t.Fatalf("ports %v and %v", a.Ports, b.Ports)
	}
	_ = append(a.Ports, 1)
	_ = append(a.Statuses, MesosTaskStatus{State: "X"})
	if len(b.Ports) != 2 || b.Ports[0] != 31000 || st.Frameworks[0].Tasks[1].Statuses[0].State != "TASK_STARTING" {
		t.Errorf("an append to one task's slices changed another task")
	}
}

// The fast decoder allocates little per task: its strings and one share of the slabs.
func TestMesosFastAllocations(t *testing.T) {
	const tasks = 5000
	data := mesosStateDoc(mesosStateOpts{apps: 500, tasksPerApp: 10, agents: 100})
	allocs := testing.AllocsPerRun(1, func() {
		if _, ok := decodeMesosStateFast(data); !ok {
			t.Fatal("fell back to encoding/json")
		}
	})
	// Per task: its id, half an address, a share of the slabs, chunks and maps, and the
	// parsing of the ports resources (997 different ones).
	t.Logf("%.2f allocations a task", allocs/tasks)
	if perTask := allocs / tasks; perTask > 3 {
		t.Errorf("%.0f allocations for %d tasks: %.2f a task, want at most 3", allocs, tasks, perTask)
	}
}

func TestChunks(t *testing.T) {
	var c chunks[int]
	for _, n := range []int{0, 1, 15, 16, 17, 100, 5000, 20_000, 3, 0, 9000} {
		for i := range n {
			*c.next() = i
		}
		got := c.collect()
		if len(got) != n || cap(got) != n || n == 0 && got != nil {
			t.Fatalf("collected %d values (capacity %d, nil %t), want %d", len(got), cap(got), got == nil, n)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("value %d of %d is %d", i, n, v)
			}
		}
	}
	if len(c.spare) > 20 {
		t.Errorf("%d spare arrays: they are not reused", len(c.spare))
	}
}

func TestSlab(t *testing.T) {
	var s slab[int]
	var copies [][]int
	for n := range 600 {
		src := make([]int, n%300)
		for i := range src {
			src[i] = n
		}
		c := s.copy(src)
		if len(c) != len(src) || cap(c) != len(c) || len(src) == 0 && c != nil {
			t.Fatalf("copy of %d values: length %d, capacity %d", len(src), len(c), cap(c))
		}
		copies = append(copies, c)
		*s.new() = -1
	}
	for n, c := range copies {
		for _, v := range c {
			if v != n {
				t.Fatalf("copy %d holds %v", n, c)
			}
		}
	}
}

// encoding/json matches a key to a field by its name or, failing that, ignoring case: the fold
// sets read them that way only while no two names of a struct are equal ignoring case.
func TestMesosFieldSets(t *testing.T) {
	for _, f := range []*foldSet{&mesosStateFields, &leaderInfoFields, &mesosAddressFields, &frameworkFields, &agentFields,
		&mesosTaskFields, &resourcesFields, &taskStatusFields, &containerStatusFields, &networkInfoFields, &networkIPFields,
		&mesosDiscoveryFields, &discoveryPortsFields, &mesosDiscPortFields, &labelsFields, &labelFields} {
		if len(f.names) > 64 {
			t.Errorf("%v: more fields than fields() can track", f.names)
		}
		for i, n := range f.names {
			if j := f.index([]byte(strings.ToUpper(n))); j != i {
				t.Errorf("%v: %q is field %d, want %d", f.names, strings.ToUpper(n), j, i)
			}
		}
	}
}

func FuzzDecodeMesosState(f *testing.F) {
	f.Add(readFixture(f, "state_fake.json"))
	for _, in := range mesosEdgeCases {
		f.Add([]byte(in))
	}
	f.Add(mesosStateDoc(mesosStateOpts{apps: 2, tasksPerApp: 2, bigApp: 1, agents: 2, otherFrameworks: 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// DecodeMesosState gives the same state and error as encoding/json for every input.
		mesosCheckSameAsStd(t, "fuzz", data)
	})
}
