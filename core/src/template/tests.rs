use serde_json::{Value as Json, json};

use super::*;
use crate::context::{AuthorizerRef, AuthorizerValues};

struct Req<'a> {
    body: &'a str,
    path: Vec<(&'a str, &'a str)>,
    query: Vec<(&'a str, &'a str)>,
    header: Vec<(&'a str, &'a str)>,
    stage: Vec<(&'a str, &'a str)>,
    status: Option<u16>,
}

fn req(body: &str) -> Req<'_> {
    Req {
        body,
        path: Vec::new(),
        query: Vec::new(),
        header: Vec::new(),
        stage: Vec::new(),
        status: None,
    }
}

fn ctx() -> RequestContext<'static> {
    RequestContext {
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        method: "POST",
        stage: "prod",
        api_id: "abcd1234",
        path: "/prod/pets",
        route_key: "POST /pets",
        ..RequestContext::default()
    }
}

fn run_full(src: &str, r: &Req<'_>, ctx: &RequestContext<'_>) -> (String, Overrides) {
    let t = MappingTemplate::compile(src).unwrap_or_else(|e| panic!("{e}"));
    let input = TemplateInput {
        body: r.body.as_bytes(),
        path: &r.path,
        querystring: &r.query,
        header: &r.header,
        stage_variables: &r.stage,
        context: ctx,
        status: r.status,
    };
    let mut out = Vec::new();
    let ov = t.render(&input, &mut out).unwrap_or_else(|e| panic!("{e}"));
    (String::from_utf8(out).unwrap(), ov)
}

fn run_req(src: &str, r: &Req<'_>) -> String {
    run_full(src, r, &ctx()).0
}

fn run(src: &str, body: &str) -> String {
    run_req(src, &req(body))
}

fn render_err(src: &str, body: &str) -> RenderError {
    let t = MappingTemplate::compile(src).unwrap();
    let c = ctx();
    let input = TemplateInput {
        body: body.as_bytes(),
        path: &[],
        querystring: &[],
        header: &[],
        stage_variables: &[],
        context: &c,
        status: None,
    };
    let limits = RenderLimits {
        max_steps: 100_000,
        max_output: 1 << 20,
    };
    t.render_with(&input, &mut Vec::new(), &limits).unwrap_err()
}

fn compile_err(src: &str) -> String {
    MappingTemplate::compile(src).unwrap_err().to_string()
}

const PETS: &str = r#"[
  {"id": 1, "type": "dog", "price": 249.99},
  {"id": 2, "type": "cat", "price": 124.99},
  {"id": 3, "type": "fish", "price": 0.99}
]"#;

/// AWS "Mapping template transformations for REST APIs": the PetStore template.
const PETSTORE: &str = r#"#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "description" : "Item $elem.id is a $elem.type.",
    "askingPrice" : $elem.price
  }#if($foreach.hasNext),#end

#end
]"#;

#[test]
fn petstore_example() {
    let out = run(PETSTORE, PETS);
    // Velocity 1.7's whitespace: `#set(...)`, `#foreach(...)` and `#end` eat their newline;
    // the empty line before the closing `#end` is what puts each item on its own line.
    assert_eq!(
        out,
        "[\n  {\n    \"description\" : \"Item 1 is a dog.\",\n    \"askingPrice\" : 249.99\n  },\n  {\n    \"description\" : \"Item 2 is a cat.\",\n    \"askingPrice\" : 124.99\n  },\n  {\n    \"description\" : \"Item 3 is a fish.\",\n    \"askingPrice\" : 0.99\n  }\n]"
    );
    // The documented output.
    let doc = json!([
        {"description": "Item 1 is a dog.", "askingPrice": 249.99},
        {"description": "Item 2 is a cat.", "askingPrice": 124.99},
        {"description": "Item 3 is a fish.", "askingPrice": 0.99}
    ]);
    assert_eq!(serde_json::from_str::<Json>(&out).unwrap(), doc);
}

#[test]
fn petstore_complex_example() {
    // AWS "Mapping template transformations": the "complex mapping template" with a cutoff.
    let src = r#"#set($inputRoot = $input.path('$'))
#set($cheap = 100)
{
  "choices": [
#foreach($elem in $inputRoot)
    {
      "description": "Item $elem.id is a $elem.type.",
      #if($elem.price > $cheap)"affordable": false#else"affordable": true#end,
      "askingPrice": $elem.price
    }#if($foreach.hasNext),#end

#end
  ]
}"#;
    let out: Json = serde_json::from_str(&run(src, PETS)).unwrap();
    assert_eq!(
        out,
        json!({"choices": [
            {"description": "Item 1 is a dog.", "affordable": false, "askingPrice": 249.99},
            {"description": "Item 2 is a cat.", "affordable": false, "askingPrice": 124.99},
            {"description": "Item 3 is a fish.", "affordable": true, "askingPrice": 0.99}
        ]})
    );
}

#[test]
fn photos_example() {
    // AWS "Example data models and mapping templates": the photo album transformation.
    let body = r#"{"photos": {"page": 1, "pages": "1234", "perpage": 100, "total": "123398",
        "photo": [
          {"id": "12345678901", "owner": "23456789@A12", "photographer_first_name": "Saanvi",
           "photographer_last_name": "Sarkar", "secret": "abc123d456", "server": "1234",
           "farm": 1, "title": "Sample photo 1", "ispublic": true, "isfriend": false,
           "isfamily": false},
          {"id": "23456789012", "owner": "34567890@B23", "photographer_first_name": "Richard",
           "photographer_last_name": "Roe", "secret": "bcd234e567", "server": "2345",
           "farm": 2, "title": "Sample photo 2", "ispublic": true, "isfriend": false,
           "isfamily": false}]}}"#;
    let src = r#"#set($inputRoot = $input.path('$'))
{
  "photos": [
#foreach($elem in $inputRoot.photos.photo)
    {
      "id": "$elem.id",
      "photographedBy": "$elem.photographer_first_name $elem.photographer_last_name",
      "title": "$elem.title",
      "ispublic": $elem.ispublic,
      "isfriend": $elem.isfriend,
      "isfamily": $elem.isfamily
    }#if($foreach.hasNext),#end
		
#end
  ]
}"#;
    let out: Json = serde_json::from_str(&run(src, body)).unwrap();
    assert_eq!(
        out,
        json!({"photos": [
            {"id": "12345678901", "photographedBy": "Saanvi Sarkar", "title": "Sample photo 1",
             "ispublic": true, "isfriend": false, "isfamily": false},
            {"id": "23456789012", "photographedBy": "Richard Roe", "title": "Sample photo 2",
             "ispublic": true, "isfriend": false, "isfamily": false}
        ]})
    );
}

#[test]
fn override_status_example() {
    // AWS "Override your API's request and response parameters and status codes", example 1.
    let src = "#set($inputRoot = $input.path('$'))\n$input.json(\"$\")\n#if($inputRoot.toString().contains(\"error\"))\n#set($context.responseOverride.status = 400)\n#end\n";
    let body =
        r#"{"errors": [{"key": "GetPetRequest.petId", "message": "The value is out of range."}]}"#;
    let mut r = req(body);
    r.status = Some(200);
    let (out, ov) = run_full(src, &r, &ctx());
    assert_eq!(
        serde_json::from_str::<Json>(&out).unwrap(),
        serde_json::from_str::<Json>(body).unwrap()
    );
    assert_eq!(ov.status, Some(400));
    let (_, ov) = run_full(src, &req(r#"{"id": 1}"#), &ctx());
    assert_eq!(ov.status, None);
}

#[test]
fn override_parameters() {
    // AWS example 2: request overrides from the body, response header override.
    let src = r#"#set($inputRoot = $input.path('$'))
#set($context.requestOverride.header.header1 = "$inputRoot.header1")
#set($context.requestOverride.header.header2 = "$inputRoot.header2")
#set($context.requestOverride.querystring.myQueryString = "$inputRoot.header1")
#set($context.requestOverride.path.petId = "$inputRoot.petId")
#set($context.responseOverride.header.Content-Type = "application/xml")
#set($context.responseOverride.header.X-Count = 3)
#set($context.responseOverride.status = "201")
status=$context.responseOverride.status h=$context.requestOverride.header.header1"#;
    let (out, ov) = run_full(
        src,
        &req(r#"{"header1": "a", "header2": "b", "petId": 7}"#),
        &ctx(),
    );
    assert_eq!(out, "status=201 h=a");
    assert_eq!(ov.status, Some(201));
    assert_eq!(
        ov.request_header,
        vec![
            ("header1".into(), "a".into()),
            ("header2".into(), "b".into())
        ]
    );
    assert_eq!(ov.querystring, vec![("myQueryString".into(), "a".into())]);
    assert_eq!(ov.path, vec![("petId".into(), "7".into())]);
    assert_eq!(
        ov.header,
        vec![
            ("Content-Type".into(), "application/xml".into()),
            ("X-Count".into(), "3".into())
        ]
    );
}

#[test]
fn all_params_example() {
    // AWS "Variables for data transformations": `$input.params()` looped into JSON.
    let src = r#"#set($allParams = $input.params())
{
"params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
"$type" : {
    #foreach($paramName in $params.keySet())
    "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
}
}"#;
    let mut r = req("");
    r.path = vec![("petId", "12")];
    r.query = vec![("q", "a'b"), ("page", "1"), ("q", "last")];
    r.header = vec![("Accept", "*/*"), ("X-Trace", "t\"1")];
    let out: Json = serde_json::from_str(&run_req(src, &r)).unwrap();
    assert_eq!(
        out,
        json!({"params": {
            "path": {"petId": "12"},
            "querystring": {"q": "last", "page": "1"},
            "header": {"Accept": "*/*", "X-Trace": "t\"1"}
        }})
    );
}

#[test]
fn input_params() {
    let mut r = req("");
    r.path = vec![("id", "p")];
    r.query = vec![("id", "q"), ("only", "q2")];
    r.header = vec![("X-Id", "h"), ("id", "h2")];
    assert_eq!(
        run_req(
            "$input.params('id') $input.params('only') $input.params('x-id') [$input.params('none')]",
            &r
        ),
        "p q2 h []"
    );
    assert_eq!(
        run_req(
            "$input.params().header.get('x-id') $input.params().header.X-Id $input.params().path.id $input.params().querystring",
            &r
        ),
        "h h p {id=q, only=q2}"
    );
}

#[test]
fn input_json_and_path() {
    let body = r#"{"a": {"b": [1, 2.5, "x", null, true]}, "s": "t\"q", "n": 1.0, "e": {}}"#;
    assert_eq!(
        run("$input.json('$.a')", body),
        r#"{"b":[1,2.5,"x",null,true]}"#
    );
    assert_eq!(run("$input.json('$.s')", body), r#""t\"q""#);
    assert_eq!(run("$input.json('$.a.b[0]')", body), "1");
    assert_eq!(run("$input.json('$.missing')", body), "null");
    assert_eq!(
        run("$input.json('$.a.b[*]')", body),
        r#"[1,2.5,"x",null,true]"#
    );
    assert_eq!(run("$input.json('$')", ""), "{}");
    // Objects and lists print as Java's toString.
    assert_eq!(
        run("$input.path('$.a')", body),
        "{b=[1, 2.5, x, null, true]}"
    );
    assert_eq!(run("$input.path('$.a.b')", body), "[1, 2.5, x, null, true]");
    assert_eq!(run("$input.path('$.n') $input.path('$.e')", body), "1.0 {}");
    assert_eq!(
        run("$input.path('$.a.b').size() $input.path('$.a').b[1]", body),
        "5 2.5"
    );
    assert_eq!(run("$input.path('$.a.b')[2].length()", body), "1");
    assert_eq!(run("[$input.path('$.nothing')]", body), "[]");
    assert_eq!(run("$input.path('$.a.b[?(@ == 1)]')", body), "[1]");
    assert_eq!(
        run(
            "#set($p = '$.s')$input.path($p) $input.json(\"$.a.b[1]\")",
            body
        ),
        "t\"q 2.5"
    );
    assert_eq!(run("$input.body", "raw text"), "raw text");
    assert_eq!(
        render_err("$input.path('$')", "not json"),
        RenderError::BodyNotJson("expected ident at line 1 column 2".into())
    );
}

#[test]
fn references() {
    assert_eq!(run("#set($x = 'v')$x ${x} $!x $!{x}", ""), "v v v v");
    // Null references render as nothing in API Gateway.
    assert_eq!(run("[$nope][$!nope][${nope}][$nope.a.b()]", ""), "[][][][]");
    assert_eq!(
        run(
            "#set($m = {'a': {'b': [10, 20]}})$m.a.b[1] $m['a'].b.get(0)",
            ""
        ),
        "20 10"
    );
    // Text that only looks like a reference.
    assert_eq!(
        run("cost: $5 and $ and $.x and a#b #notadirective", ""),
        "cost: $5 and $ and $.x and a#b #notadirective"
    );
    assert_eq!(run("#set($x = 'v')$x. ${x}y $x[", ""), "v. vy v[");
    // Velocity 1.7 names may hold `-`.
    assert_eq!(run("#set($a-b = 1)$a-b", ""), "1");
}

#[test]
fn directives() {
    assert_eq!(
        run(
            "#set($n = 5)#if($n > 10)big#elseif($n > 3)mid#{else}small#end",
            ""
        ),
        "mid"
    );
    assert_eq!(run("#{if}(true)y#{end}", ""), "y");
    assert_eq!(
        run(
            "#foreach($i in [1..3])$i/$foreach.index/$foreach.count/$velocityCount#if($foreach.hasNext),#end#end",
            ""
        ),
        "1/0/1/1,2/1/2/2,3/2/3/3"
    );
    assert_eq!(run("#foreach($i in [3..1])$i#end", ""), "321");
    assert_eq!(
        run("#foreach($i in [1..5])#if($i == 3)#break#end$i#end", ""),
        "12"
    );
    assert_eq!(
        run(
            "#foreach($i in [1, 2])#foreach($j in ['a', 'b'])$i$j #end#end",
            ""
        ),
        "1a 1b 2a 2b "
    );
    assert_eq!(
        run("#set($i = 'kept')#foreach($i in [1])$i#end $i", ""),
        "1 kept"
    );
    assert_eq!(run("#foreach($v in {'a': 1, 'b': 2})$v#end", ""), "12");
    assert_eq!(
        run(
            "#foreach($v in $input.path('$'))$v;#end",
            r#"{"a": 1, "b": [2]}"#
        ),
        "1;[2];"
    );
    assert_eq!(run("a#stop b", ""), "a");
    assert_eq!(run("a## comment\nb#* block\ncomment *#c", ""), "abc");
    assert_eq!(run("#[[ $not #if ]]#", ""), " $not #if ");
    // A null right-hand side leaves the variable as it was (Velocity 1.7).
    assert_eq!(run("#set($x = 1)#set($x = $nope)$x", ""), "1");
}

#[test]
fn whitespace() {
    // `#set` eats the indentation before it and its newline; `#if`, `#foreach` keep the
    // indentation and eat their newline; `#end` and `#else` eat their newline.
    assert_eq!(run("a\n  #set($x = 1)\nb", ""), "a\nb");
    assert_eq!(run("a\n  #if(true)\n  b\n  #end\nc", ""), "a\n    b\n  c");
    assert_eq!(run("#if(false)\nx\n#else\ny\n#end\nz", ""), "y\nz");
    assert_eq!(run("#if(true) \t\nx#end \nz", ""), "xz");
    assert_eq!(run("#if(true) y#end", ""), " y");
    assert_eq!(run("a\r\n#set($x = 1)\r\nb", ""), "a\r\nb");
}

#[test]
fn literals_and_operators() {
    // `#set` eats the spaces before it.
    assert_eq!(
        run(
            "#set($x = 7 / 2)$x #set($y = 7.0 / 2)$y,#set($z = 7 % 3)$z",
            ""
        ),
        "33.5,1"
    );
    assert_eq!(run("#set($x = -3 + 2 * (4 - 1))$x", ""), "3");
    assert_eq!(run("#set($x = 1 / 0)[$x]", ""), "[]");
    assert_eq!(run("#set($s = 'a' + 1 + 2)$s", ""), "a12");
    assert_eq!(run("#set($s = \"v=$s\")$s", ""), "v=");
    assert_eq!(
        run("#set($a = 'x')#set($s = \"[$a]\" + '[$a]')$s", ""),
        "[x][$a]"
    );
    assert_eq!(run("#set($s = 'it''s')$s", ""), "it's");
    assert_eq!(
        run(
            "#if(1 == 1.0 && 'a' == \"a\" and !false and not null)y#end",
            ""
        ),
        "y"
    );
    assert_eq!(
        run("#if(2 < 3 && 3 <= 3 && 4 > 3 && 4 >= 5)y#{else}n#end", ""),
        "n"
    );
    assert_eq!(
        run(
            "#if(1 lt 2 and 2 gt 1 and 1 eq 1 and 1 ne 2 and 1 le 1 and 1 ge 1)y#end",
            ""
        ),
        "y"
    );
    assert_eq!(
        run("#if(false || 'x' == 'y' or $nope)y#{else}n#end", ""),
        "n"
    );
    assert_eq!(run("#if('')empty-is-true#end", ""), "empty-is-true");
    assert_eq!(
        run("#set($l = [1, 'a', true, null, 2.5, [], {}])$l", ""),
        "[1, a, true, null, 2.5, [], {}]"
    );
    assert_eq!(
        run("#set($m = {'a': 1, \"b\": [1..2]})$m", ""),
        "{a=1, b=[1, 2]}"
    );
    assert_eq!(
        run("#set($x = 9223372036854775807 + 1)$x", ""),
        "9.223372036854776E18"
    );
}

#[test]
fn numbers_print_as_java() {
    use super::value::java_double;
    assert_eq!(java_double(1.0), "1.0");
    assert_eq!(java_double(249.99), "249.99");
    assert_eq!(java_double(0.001), "0.001");
    assert_eq!(java_double(0.0001), "1.0E-4");
    assert_eq!(java_double(1234567.0), "1234567.0");
    assert_eq!(java_double(12345678.0), "1.2345678E7");
    assert_eq!(java_double(1e21), "1.0E21");
    assert_eq!(java_double(-2.5), "-2.5");
    assert_eq!(java_double(0.0), "0.0");
    assert_eq!(
        run(
            "$input.path('$.a') $input.path('$.b') $input.path('$.c')",
            r#"{"a": 3, "b": 1e2, "c": 18446744073709551615}"#
        ),
        "3 100.0 1.8446744073709552E19"
    );
}

#[test]
fn string_methods() {
    let src = "#set($s = ' Hello, World ')$s.trim().length() $s.toUpperCase() $s.toLowerCase().trim() $s.contains('World') $s.trim().startsWith('Hell') $s.endsWith(' ') $s.indexOf('o') $s.trim().substring(7) $s.trim().substring(0, 5) $s.replace('l', 'L') $s.isEmpty() $s.trim().equalsIgnoreCase('hello, world') $s.trim().equals('Hello, World') $s.size()";
    assert_eq!(
        run(src, ""),
        "12  HELLO, WORLD  hello, world true true true 5 World Hello  HeLLo, WorLd  false true true 14"
    );
    assert_eq!(
        run(
            "#set($s = 'a1b22c')$s.replaceAll('[0-9]+', '#') $s.replaceFirst('(\\d)', '<$1>') $s.matches('[a-c0-9]+') $s.matches('b') $s.split('[0-9]+')",
            ""
        ),
        "a#b#c a<1>b22c true false [a, b, c]"
    );
    assert_eq!(
        run("#set($s = 'a,b,,')$s.split(',').size() $s.split(',')", ""),
        "2 [a, b]"
    );
    assert_eq!(
        run(
            "#set($s = 'héllo')$s.length() $s.substring(1, 2) $s.charAt(4) $s.indexOf('l')",
            ""
        ),
        "5 é o 2"
    );
    assert_eq!(run("[$s.substring(9)]", ""), "[]");
    assert_eq!(
        run("#set($s = 'abc')[$s.substring(4)][$s.nosuch()]", ""),
        "[][]"
    );
}

#[test]
fn list_and_map_methods() {
    assert_eq!(
        run(
            "#set($l = [])#set($d = $l.add('a'))#set($d = $l.add(2))$l.size() $l.get(1) $l.isEmpty() $l.contains('a') $l",
            ""
        ),
        "2 2 false true [a, 2]"
    );
    assert_eq!(
        run(
            "#set($l = [1, 2, 3])$l.remove(0) $l.indexOf(3) $l.subList(0, 1) $l",
            ""
        ),
        "1 1 [2] [2, 3]"
    );
    assert_eq!(
        run(
            "#set($m = {})#set($d = $m.put('k', 'v'))#set($d = $m.put('n', 1))$m.size() $m.get('k') $m.containsKey('n') $m.keySet() $m.values() $m",
            ""
        ),
        "2 v true [k, n] [v, 1] {k=v, n=1}"
    );
    assert_eq!(
        run(
            "#set($m = {'a': 1, 'b': 2})#foreach($e in $m.entrySet())$e.key=$e.value;$e.getKey()#end",
            ""
        ),
        "a=1;ab=2;b"
    );
    // `#set` into maps and lists, and `put` through a path.
    assert_eq!(
        run(
            "#set($m = {'a': {}})#set($m.a.b = 1)#set($m.c = [0])#set($m.c[0] = 5)$m",
            ""
        ),
        "{a={b=1}, c=[5]}"
    );
    assert_eq!(
        run("#set($m = {'l': []})$m.l.add(1)$m.l.add(2) $m", ""),
        "truetrue {l=[1, 2]}"
    );
    // A JSON object from the body can be changed (a copy: the body stays as it was).
    assert_eq!(
        run(
            "#set($b = $input.path('$'))#set($b.url = \"https://example.com/$b.id\")$b $input.json('$')",
            r#"{"id": 7}"#
        ),
        r#"{id=7, url=https://example.com/7} {"id":7}"#
    );
    // Value semantics: a copy does not change the original.
    assert_eq!(
        run("#set($a = [1])#set($b = $a)#set($d = $b.add(2))$a $b", ""),
        "[1] [1, 2]"
    );
    assert_eq!(
        run(
            "#set($a = [1])#set($d = $a.add($a))#set($d = $a.add($a))$a",
            ""
        ),
        "[1, [1], [1, [1]]]"
    );
}

#[test]
fn util_functions() {
    assert_eq!(
        run(r#"$util.escapeJavaScript('it''s a "test" / \ é')"#, ""),
        r#"it\'s a \"test\" \/ \\ \u00E9"#
    );
    assert_eq!(
        run(
            "$util.escapeJavaScript($input.path('$.s'))",
            r#"{"s": "a\nb\t😀"}"#
        ),
        r"a\nb\t\uD83D\uDE00"
    );
    assert_eq!(
        run("$util.urlEncode('a b&c=d/é*~')", ""),
        "a+b%26c%3Dd%2F%C3%A9*%7E"
    );
    assert_eq!(
        run("$util.urlDecode('a+b%26c%3Dd%2F%C3%A9%zz')", ""),
        "a b&c=d/é%zz"
    );
    assert_eq!(
        run("$util.base64Encode('hello world')", ""),
        "aGVsbG8gd29ybGQ="
    );
    assert_eq!(
        run("$util.base64Decode('aGVsbG8gd29ybGQ=')", ""),
        "hello world"
    );
    assert_eq!(
        run(
            "#set($j = $util.parseJson($input.path('$.inner')))$j.a[1].b $j",
            r#"{"inner": "{\"a\": [0, {\"b\": \"deep\"}]}"}"#
        ),
        "deep {a=[0, {b=deep}]}"
    );
    assert_eq!(
        run("[$util.parseJson('nope')][$util.nosuch('x')]", ""),
        "[][]"
    );
}

struct Claims;
impl AuthorizerValues for Claims {
    fn claim(&self, name: &str) -> Option<&str> {
        (name == "sub").then_some("user-1")
    }
    fn property(&self, name: &str) -> Option<&str> {
        (name == "tenant").then_some("t-9")
    }
}

#[test]
fn context_and_stage_variables() {
    // AWS "Examples using variables": $context values passed to the backend.
    let src = r#"{"stage": "$context.stage", "request_id": "$context.requestId", "api_id": "$context.apiId", "http_method": "$context.httpMethod", "source_ip": "$context.identity.sourceIp", "user": "$context.identity.user", "sub": "$context.authorizer.claims.sub", "tenant": "$context.authorizer.tenant", "stage_var": "$stageVariables.backend", "unknown": "$context.resourceId", "len": $context.stage.length()}"#;
    let claims = Claims;
    let mut c = ctx();
    c.source_ip = Some("192.0.2.1".parse().unwrap());
    c.authorizer = Some(AuthorizerRef(&claims));
    let mut r = req("");
    r.stage = vec![("backend", "10.0.0.1:9000")];
    let (out, _) = run_full(src, &r, &c);
    assert_eq!(
        serde_json::from_str::<Json>(&out).unwrap(),
        json!({"stage": "prod", "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
               "api_id": "abcd1234", "http_method": "POST", "source_ip": "192.0.2.1",
               "user": "", "sub": "user-1", "tenant": "t-9", "stage_var": "10.0.0.1:9000",
               "unknown": "", "len": 4})
    );
    assert_eq!(run_req("$stageVariables", &r), "{backend=10.0.0.1:9000}");
}

#[test]
fn compile_errors() {
    assert_eq!(
        compile_err("a\n  #if(true)\nx"),
        "line 2, column 3: #if without #end"
    );
    assert_eq!(
        compile_err("#end"),
        "line 1, column 1: #end without #if or #foreach"
    );
    assert_eq!(
        compile_err("x #* open"),
        "line 1, column 3: unterminated #* comment"
    );
    assert_eq!(
        compile_err("#macro(x)#end"),
        "line 1, column 1: #macro is not supported"
    );
    assert_eq!(
        compile_err("#set($x = )"),
        "line 1, column 11: expected an expression"
    );
    assert_eq!(
        compile_err("#foreach($x $l)#end"),
        "line 1, column 13: expected `in` in #foreach"
    );
    assert_eq!(
        compile_err("#set($x = 'open)"),
        "line 1, column 11: unterminated string"
    );
    assert!(compile_err("$input.path('$[')").starts_with("line 1, column 1: JSONPath \"$[\""));
    assert!(compile_err("#set($a.b() = 1)").contains("#set can assign"));
    let deep = format!("#set($x = {}1{})", "(".repeat(100), ")".repeat(100));
    assert!(compile_err(&deep).contains("nested deeper than 64"));
    let deep_if = "#if(true)".repeat(100);
    assert!(compile_err(&deep_if).contains("nested deeper"));
}

#[test]
fn render_limits() {
    assert_eq!(
        render_err("#foreach($i in [1..1000000])x#end", ""),
        RenderError::TooManySteps(100_000)
    );
    assert_eq!(
        render_err(
            "#foreach($i in [1..50])#foreach($j in [1..50])#foreach($k in [1..50])x#end#end#end",
            ""
        ),
        RenderError::TooManySteps(100_000)
    );
    assert_eq!(
        render_err(
            "#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..40])#set($s = \"$s$s\")#end",
            ""
        ),
        RenderError::TooManySteps(100_000)
    );
    // Shared lists print (and compare) exponentially more than they hold.
    assert_eq!(
        render_err(
            "#set($a = [1])#foreach($i in [1..40])#set($a = [$a, $a])#end$a",
            ""
        ),
        RenderError::OutputTooLarge(1 << 20)
    );
    assert_eq!(
        render_err(
            "#set($a = [1])#set($b = [1])#foreach($i in [1..40])#set($a = [$a, $a])#set($b = [$b, $b])#end#if($a == $b)#end",
            ""
        ),
        RenderError::TooManySteps(100_000)
    );
    assert_eq!(
        render_err(
            "#set($a = [1])#foreach($i in [1..40])#set($a = [$a, $a])#end#set($m = {$a: 1})",
            ""
        ),
        RenderError::OutputTooLarge(1 << 20)
    );
    assert_eq!(
        render_err(
            "#set($a = [])#foreach($i in [1..1000])#set($a = [$a])#end",
            ""
        ),
        RenderError::TooDeep(256)
    );
    assert_eq!(
        render_err(
            "#set($a = [])#foreach($i in [1..1000])#set($d = $a.add($a))#end$a",
            ""
        ),
        RenderError::TooDeep(256)
    );
}

#[test]
fn body_is_parsed_once_and_only_when_needed() {
    let t = MappingTemplate::compile("$input.body $context.stage").unwrap();
    assert!(!t.uses_body_json());
    let c = ctx();
    let input = TemplateInput {
        body: b"not json",
        path: &[],
        querystring: &[],
        header: &[],
        stage_variables: &[],
        context: &c,
        status: None,
    };
    let mut out = Vec::new();
    t.render(&input, &mut out).unwrap();
    assert_eq!(out, b"not json prod");
    assert!(
        MappingTemplate::compile("$input.json('$')")
            .unwrap()
            .uses_body_json()
    );
}

#[test]
fn template_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<MappingTemplate>();
}
