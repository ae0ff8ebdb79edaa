#!/usr/bin/env python3
"""Generates tests/corpus/adversarial_{mysql,postgres}.tsv: seeded, deterministic mutations of
pure reads along the axes of issue #12 (executable comments with and without versions, comment
openers inside comments, Unicode and control whitespace, backslash readings, qualified names,
user operators, sequences, session-state reads, case and literals).

Classes (same format as tests/corpus/*.tsv):
  read       a pure read: must run on a read-only replica with no side effect
  write      writes: fails on a read-only replica
  lock       takes a lock (FOR UPDATE, GET_LOCK, advisory locks)
  session    reads or sets the session's own state (needs the primary's session)
  ambiguous  the server's lexer and sqlparser's may disagree: primary
Every class other than read must be routed to the primary. tests/adversarial.rs runs every line
on the real replicas (scripts/mariadb.sh, scripts/postgres.sh) and checks the labels.
"""
import random, os

SEED = 12
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WS = ["\u00a0", "\u3000", "\u2003", "\u2028", "\u200b", "\ufeff", "\x0b", "\x0c", "\x85"]

def esc(s):
    assert "\t" not in s
    return s.replace("\n", "\\n").replace("\r", "\\r")  # never used: lines stay single-line

def emit(out, cls, sql):
    assert "\n" not in sql and "\t" not in sql, sql
    out.append(f"{cls}\t{sql}")

def mysql(rng):
    out = []
    reads = [
        "SELECT id, name FROM users WHERE id = {n}",
        "SELECT COUNT(*) FROM orders WHERE user_id = {n}",
        "select name from users where id in ({n}, {m})",
        "SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = {n}",
        "SELECT LOWER(name), UPPER(email) FROM users WHERE id = {n}",
        "SELECT id FROM products WHERE sku = 'sku-{n}'",
        "SELECT MOD(id, 3), id DIV 2, ABS(-{n}) FROM users LIMIT 5",
        "SELECT JSON_OBJECT('a', {n}), JSON_EXTRACT('{{\"a\": 1}}', '$.a')",
        "SELECT ST_AsText(ST_GeomFromText('POINT({n} {m})'))",
        "SELECT 'it''s {n}', \"dq\", 'back\\\\slash' FROM users LIMIT 1",
        "SELECT EXTRACT(YEAR_MONTH FROM '2024-0{m}-01'), DATE_FORMAT(NOW(), '%Y')",
        "SELECT id FROM users WHERE name LIKE 'a%' ORDER BY id LIMIT {n}",
    ]
    payloads = [
        ("lock", "FOR UPDATE"),
        ("lock", "LOCK IN SHARE MODE"),
        ("lock", ", GET_LOCK('adv_lock', 0)"),
        ("write", ", NEXTVAL(s1)"),
        ("session", "INTO @adv_v"),
    ]
    def base():
        return rng.choice(reads).format(n=rng.randint(1, 9), m=rng.randint(1, 9))
    # reads: benign mutations (case, literals, comments, whitespace that both lexers agree on)
    for _ in range(130):
        b = base()
        k = rng.randrange(6)
        if k == 0:
            # keyword case only: MariaDB table names are case-sensitive on Linux
            kws = {"SELECT", "FROM", "WHERE", "JOIN", "ON", "LIMIT", "ORDER", "BY", "IN", "LIKE"}
            b = " ".join(w.lower() if w in kws and rng.random() < 0.5 else w for w in b.split(" "))
        elif k == 1: b = "/* rwsplit test */ " + b
        elif k == 2: b = b + " -- trailing é"
        elif k == 3: b = b.replace(" ", "  ", 1)
        elif k == 4: b = b + " # hash comment"
        else: b = "  " + b
        emit(out, "read", b)
    # executable comments, every form, with nested openers
    for _ in range(70):
        cls, p = rng.choice(payloads)
        if cls == "session": p = "INTO @adv_v"
        ver = rng.choice(["", "50000", "40101", "99999", "100000", "100600", "999999"])
        form = rng.choice(["/*!{v} {p} */", "/*M!{v} {p} */", "/*!{v} /* c */ {p} */", "/*M!{v} {p} /* x */ */"])
        b = base().split(" ORDER BY")[0].split(" LIMIT")[0]
        if "INTO" in p or "FOR" in p or "LOCK" in p:
            emit(out, "ambiguous", b + " " + form.format(v=ver, p=p))
        else:
            emit(out, "ambiguous", b.replace(" FROM", " " + form.format(v=ver, p=p) + " FROM", 1) if " FROM" in b else b + " " + form.format(v=ver, p=p))
    # '--' followed by a non-ASCII or control space, comment openers in comments, CR
    for _ in range(60):
        cls, p = rng.choice(payloads[:2])
        ws = rng.choice(WS)
        b = base().split(" ORDER BY")[0].split(" LIMIT")[0]
        k = rng.randrange(4)
        if k == 0: emit(out, "ambiguous", f"{b} --{ws}x {p}")
        elif k == 1: emit(out, "ambiguous", f"{b} /* a /* b */ {p} -- */")
        elif k == 2: emit(out, "ambiguous", f"{b}{ws}{p}")
        else: emit(out, "ambiguous", f"{b} /*{ws}*/ {p}")
    # backslash readings (NO_BACKSLASH_ESCAPES / ANSI_QUOTES)
    for _ in range(20):
        cls, p = rng.choice(payloads[:2])
        q = rng.choice(["'", '"'])
        emit(out, "ambiguous", f"SELECT id FROM users WHERE name = {q}a\\{q} {p} -- {q}")
    # qualified names, sequences, session state
    for _ in range(25):
        n = rng.randint(1, 9)
        emit(out, rng.choice(["session"]), rng.choice([
            f"SELECT rwsplit_test.lower(name) FROM users WHERE id = {n}",
            f"SELECT rwsplit_test.concat('a', {n})",
            f"SELECT `rwsplit_test`.`log`({n})",
        ]))
    for s in ["SELECT s1.nextval", "SELECT NEXT VALUE FOR s1", "SELECT NEXTVAL(s1)", "SELECT nextval(rwsplit_test.s1)",
              "SELECT SETVAL(s1, 100)"]:
        emit(out, "write", s)
    for s in ["SELECT PREVIOUS VALUE FOR s1", "SELECT LASTVAL(s1)", "SELECT s1.currval",
              "SHOW VARIABLES LIKE 'last_insert_id'", "SHOW SESSION VARIABLES LIKE 'last%'", "SHOW SESSION STATUS",
              "SHOW STATUS LIKE 'Last_query_cost'", "SHOW VARIABLES", "SHOW STATUS",
              "SELECT * FROM information_schema.session_variables WHERE variable_name = 'LAST_INSERT_ID'",
              "SELECT variable_value FROM information_schema.SESSION_STATUS WHERE variable_name = 'COM_SELECT'",
              "SELECT * FROM information_schema.user_variables", "SELECT CONNECTION_ID()", "SELECT LAST_INSERT_ID()",
              "SELECT @@last_insert_id", "SELECT @@session.insert_id", "SELECT @adv_v", "SELECT FOUND_ROWS()",
              "SELECT IS_USED_LOCK('adv_lock')", "SELECT RELEASE_ALL_LOCKS()"]:
        emit(out, "session", s)
    for s in ["SELECT GET_LOCK('adv_lock', 0)", "SELECT id FROM users WHERE id = 1 FOR UPDATE",
              "SELECT id FROM users WHERE id = 1 LOCK IN SHARE MODE", "SELECT id FROM users FOR UPDATE SKIP LOCKED"]:
        emit(out, "lock", s)
    for s in ["SELECT id INTO @adv_v FROM users LIMIT 1", "SET @adv_v = 1", "SELECT @adv_v := 1"]:
        emit(out, "session", s)
    for s in ["UPDATE counters SET n = n + 1 WHERE id = 1", "INSERT INTO update_log (user_id, action) VALUES (1, 'x')",
              "CALL touch_counter()", "DELETE FROM update_log WHERE id = -1"]:
        emit(out, "write", s)
    # reads the issue wants on replicas
    for s in ["SELECT 5 MOD 3", "SELECT name FROM users WHERE name SOUNDS LIKE 'alice'",
              "SELECT EXTRACT(YEAR_MONTH FROM '2024-05-01')", "SELECT ST_Distance(POINT(0, 0), POINT(3, 4))",
              "SELECT JSON_VALID('{}'), JSON_KEYS('{\"a\": 1}'), JSON_LENGTH('[1, 2]')",
              "SHOW VARIABLES LIKE 'read_only'", "SHOW GLOBAL STATUS LIKE 'Uptime'", "SHOW CREATE TABLE users",
              "SELECT 'it\\'s'", "SELECT id FROM users WHERE name = 'O\\'Brien'"]:
        emit(out, "read", s)
    return out

def postgres(rng):
    out = []
    reads = [
        "SELECT id, name FROM users WHERE id = {n}",
        "SELECT count(*) FROM orders WHERE user_id = {n}",
        "select name from users where id in ({n}, {m})",
        "SELECT lower(name), upper(email) FROM users WHERE id = {n}",
        "SELECT string_to_table('a,b,{n}', ',')",
        "SELECT to_regtype('int4'), sind({n}0), cosd({m}0)",
        "SELECT has_table_privilege('users', 'select'), pg_get_viewdef('active_users'::regclass)",
        "SELECT point({n}, {m}) <-> point(0, 0)",
        "SELECT $$dollar {n}$$, $t$ tagged ' $t$, E'esc\\\\aped'",
        "SELECT '{{1,2}}'::int[] @> ARRAY[{n}], 'abc' ~~* 'A%'",
        "SELECT id FROM users WHERE name LIKE 'a%' ORDER BY id LIMIT {n}",
        "SELECT pg_size_pretty(8192::bigint), inet_server_port()",
    ]
    payloads = [("lock", "FOR UPDATE"), ("lock", "FOR NO KEY UPDATE"), ("lock", "FOR SHARE")]
    fnp = [("lock", ", pg_advisory_lock(4242)"), ("write", ", nextval('s1')"), ("session", ", set_config('adv.v', 'x', false)")]
    def base():
        return rng.choice(reads).format(n=rng.randint(1, 9), m=rng.randint(1, 9))
    for _ in range(130):
        b = base()
        k = rng.randrange(5)
        if k == 0: b = "/* rwsplit test */ " + b
        elif k == 1: b = b + " -- trailing é"
        elif k == 2: b = b.replace(" ", "  ", 1)
        elif k == 3: b = b.replace("SELECT", "select", 1)
        else: b = "  " + b
        emit(out, "read", b)
    for _ in range(110):
        cls, p = rng.choice(payloads + fnp)
        ws = rng.choice(WS)
        b = "SELECT id FROM users WHERE id = %d" % rng.randint(1, 9)
        k = rng.randrange(6)
        fn = p.startswith(",")
        if k == 0: sql = f"SELECT 1 /* a /* b */ {p} -- */" if fn else f"{b} /* a /* b */ {p} -- */"
        elif k == 1: sql = f"SELECT 1 -- x\r{p}" if fn else f"{b} -- x\r{p}"
        elif k == 2: sql = f"SELECT 'a\\' {p} -- '" if fn else f"{b} AND name <> 'a\\' {p} -- '"
        elif k == 3: sql = f"SELECT 1{ws}{p}" if fn else f"{b}{ws}{p}"
        elif k == 4: sql = f"SELECT 1 +-- x\r{p}" if fn else f"{b} /*{ws}*/ {p}"
        else: sql = f"SELECT 1 /*{ws}*/ {p}" if fn else f"{b} --{ws}\r{p}"
        emit(out, "ambiguous", sql)
    for _ in range(20):
        n = rng.randint(1, 9)
        emit(out, "write", rng.choice([f"SELECT public.volatile_insert() + {n}", f"SELECT id FROM users WHERE id = public.volatile_insert() - {n}"]))
    for s in ["SELECT public.lower('X')", "SELECT app.now()", "SELECT \"Lower\"('X')", "SELECT 1 OPERATOR(public.+) 2",
              "SELECT 1 ##> 2", "SELECT current_setting('adv.v', true)", "SHOW adv.v", "SELECT * FROM pg_settings WHERE name = 'work_mem'",
              "SELECT pg_backend_pid()", "SELECT pg_stat_get_backend_pid(1)", "SELECT * FROM pg_prepared_statements",
              "SELECT * FROM pg_cursors", "SELECT lastval()", "SELECT currval('s1')", "SELECT pg_trigger_depth()",
              "SELECT * FROM pg_stat_xact_user_tables", "SELECT txid_current_snapshot()", "SELECT pg_my_temp_schema()",
              "SET work_mem = '8MB'", "SELECT set_config('adv.v', 'y', false)", "LISTEN adv",
              "SHOW work_mem", "SELECT current_setting('work_mem')"]:
        emit(out, "session", s)
    for s in ["SELECT nextval('s1')", "SELECT setval('s1', 100)", "SELECT volatile_insert()", "SELECT pg_catalog.nextval('s1')",
              "UPDATE users SET name = name WHERE id = -1", "INSERT INTO audit_log (msg) VALUES ('x')", "CALL log_msg('x')"]:
        emit(out, "write", s)
    for s in ["SELECT pg_advisory_lock(4242)", "SELECT pg_try_advisory_lock(4242)", "SELECT id FROM users WHERE id = 1 FOR UPDATE",
              "SELECT id FROM users FOR KEY SHARE", "SELECT pg_advisory_xact_lock(4242)"]:
        emit(out, "lock", s)
    for s in ["TABLE users", "TABLE ONLY products", "SELECT string_to_table('a b', ' ')", "SELECT to_regtype('text')",
              "SELECT degrees(pi()), sind(90), acosd(0.5)", "SELECT pg_get_constraintdef(oid) FROM pg_constraint LIMIT 1",
              "SELECT has_schema_privilege('public', 'usage')", "SELECT 1 OPERATOR(pg_catalog.+) 2",
              "SELECT pg_catalog.lower('X')", "SELECT E'it\\'s'", "SELECT $$it's$$"]:
        emit(out, "read", s)
    return out

for name, fn in [("mysql", mysql), ("postgres", postgres)]:
    rng = random.Random(SEED)
    lines = fn(rng)
    header = [f"# rwsplit adversarial corpus ({name}), generated by scripts/gen-adversarial-corpus.py (seed {SEED}); do not edit by hand.",
              "# Format: CLASS<TAB>SQL. Classes: read | write | lock | session | ambiguous; every class but read must go to the primary.",
              "# Checked on the real read-only replicas by tests/adversarial.rs and offline by tests/corpus_offline.rs."]
    with open(os.path.join(ROOT, "tests", "corpus", f"adversarial_{name}.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(header + lines) + "\n")
    print(name, len(lines))
