/*
 * Lucene oracle for recheck's differential tests.
 *
 * Evaluates Lucene classic query_string queries against small documents exactly as
 * Elasticsearch 7.10 (Lucene 8.7) does for text fields, so tests can compare recheck's
 * pure-Python engine against the real thing.
 *
 * Protocol: one JSON object per line on stdin, one JSON object per line on stdout.
 *   request:  {"query": "...", "docs": [{"field": ["value", ...], ...}, ...]}
 *   response: {"ok": true, "parsed": "<Query.toString()>", "matches": [true, false, ...]}
 *          or {"ok": false, "kind": "ParseException", "error": "<message>"}
 *   batch:    {"queries": ["...", ...], "docs": [...]}
 *          -> {"ok": true, "results": [<one response as above per query>, ...]}
 * Non-ASCII characters are written as \\uXXXX escapes so the stream is plain ASCII and no
 * platform charset can corrupt it.
 */

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.AnalyzerWrapper;
import org.apache.lucene.analysis.core.KeywordAnalyzer;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.memory.MemoryIndex;
import org.apache.lucene.queryparser.classic.ParseException;
import org.apache.lucene.queryparser.classic.QueryParser;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.MatchAllDocsQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.TermQuery;

public final class LuceneOracle {
    static final String DEFAULT_FIELD = "message";
    // Elasticsearch indexes the names of a document's fields here; `_exists_:f` and `f:*`
    // become term queries on it.
    static final String FIELD_NAMES = "_field_names";
    static final String EXISTS = "_exists_";

    /** StandardAnalyzer with Elasticsearch's text-field position_increment_gap of 100. */
    static final class GapAnalyzer extends AnalyzerWrapper {
        private final Analyzer delegate;

        GapAnalyzer(Analyzer delegate) {
            super(delegate.getReuseStrategy());
            this.delegate = delegate;
        }

        @Override
        protected Analyzer getWrappedAnalyzer(String fieldName) {
            return delegate;
        }

        @Override
        public int getPositionIncrementGap(String fieldName) {
            // Without the gap a phrase could match across two values of a multi-valued
            // field, which Elasticsearch prevents.
            return 100;
        }
    }

    /** Classic QueryParser plus the overrides Elasticsearch's QueryStringQueryParser adds. */
    static final class EsQueryParser extends QueryParser {
        EsQueryParser(Analyzer analyzer) {
            super(DEFAULT_FIELD, analyzer);
            setDefaultOperator(QueryParser.OR_OPERATOR);
            setAllowLeadingWildcard(true); // query_string default in Elasticsearch
        }

        @Override
        protected Query getFieldQuery(String field, String queryText, boolean quoted)
                throws ParseException {
            if (EXISTS.equals(field)) {
                return new TermQuery(new Term(FIELD_NAMES, queryText));
            }
            return super.getFieldQuery(field, queryText, quoted);
        }

        @Override
        protected Query getWildcardQuery(String field, String termStr) throws ParseException {
            if ("*".equals(termStr) && field != null && !"*".equals(field)) {
                return new TermQuery(new Term(FIELD_NAMES, field));
            }
            return super.getWildcardQuery(field, termStr);
        }

        @Override
        protected Query getBooleanQuery(List<BooleanClause> clauses) throws ParseException {
            Query q = super.getBooleanQuery(clauses);
            if (q == null) {
                return null;
            }
            return fixNegativeQueryIfNeeded(q);
        }

        /** Elasticsearch's Queries.fixNegativeQueryIfNeeded: a group of only NOTs matches
         *  "everything except", not nothing. */
        static Query fixNegativeQueryIfNeeded(Query q) {
            if (!(q instanceof BooleanQuery)) {
                return q;
            }
            BooleanQuery bq = (BooleanQuery) q;
            List<BooleanClause> clauses = bq.clauses();
            if (clauses.isEmpty()) {
                return q;
            }
            for (BooleanClause c : clauses) {
                if (!c.isProhibited()) {
                    return q;
                }
            }
            BooleanQuery.Builder b = new BooleanQuery.Builder();
            for (BooleanClause c : clauses) {
                b.add(c);
            }
            b.setMinimumNumberShouldMatch(bq.getMinimumNumberShouldMatch());
            b.add(new MatchAllDocsQuery(), BooleanClause.Occur.FILTER);
            return b.build();
        }
    }

    private final Analyzer analyzer = new GapAnalyzer(new StandardAnalyzer());
    private final Analyzer keyword = new KeywordAnalyzer();

    /** The outcome for one query: the parsed query, or why Lucene rejected it. */
    static final class Parsed {
        final Query query;
        final String kind;
        final String message;

        Parsed(Query query, String kind, String message) {
            this.query = query;
            this.kind = kind;
            this.message = message;
        }
    }

    Parsed parse(String text) {
        try {
            // A fresh parser per query: QueryParser keeps per-parse state.
            return new Parsed(new EsQueryParser(analyzer).parse(text), null, null);
        } catch (ParseException e) {
            return new Parsed(null, "ParseException", e.getMessage());
        } catch (RuntimeException e) {
            // TooComplexToDeterminizeException and IllegalArgumentException (bad regexp)
            // escape parse(); Elasticsearch reports them as query errors too.
            return new Parsed(null, e.getClass().getSimpleName(), String.valueOf(e.getMessage()));
        } catch (StackOverflowError e) {
            return new Parsed(null, "StackOverflowError", "query nests too deeply");
        }
    }

    /**
     * Answers {"query": q, "docs": [...]} with one result object, and
     * {"queries": [q, ...], "docs": [...]} with {"ok": true, "results": [result, ...]}.
     * The batch form indexes each document once for all queries.
     */
    String handle(String line) {
        Object request;
        try {
            request = new Json(line).parseTop();
        } catch (RuntimeException e) {
            return error("BadRequest", "invalid JSON request: " + e.getMessage());
        }
        if (!(request instanceof Map)) {
            return error("BadRequest", "request must be a JSON object");
        }
        Map<?, ?> req = (Map<?, ?>) request;
        boolean batch = req.containsKey("queries");
        Object queriesObj = batch ? req.get("queries") : List.of(String.valueOf(req.get("query")));
        if (!batch && !(req.get("query") instanceof String)) {
            return error("BadRequest", "\"query\" must be a string");
        }
        if (!(queriesObj instanceof List)) {
            return error("BadRequest", "\"queries\" must be a list of strings");
        }
        Object docsObj = req.containsKey("docs") ? req.get("docs") : List.of();
        if (!(docsObj instanceof List)) {
            return error("BadRequest", "\"docs\" must be a list");
        }
        List<?> queries = (List<?>) queriesObj;
        List<?> docs = (List<?>) docsObj;

        Parsed[] parsed = new Parsed[queries.size()];
        for (int q = 0; q < parsed.length; q++) {
            if (!(queries.get(q) instanceof String)) {
                return error("BadRequest", "query " + q + " must be a string");
            }
            parsed[q] = parse((String) queries.get(q));
        }
        boolean[][] hits = new boolean[parsed.length][docs.size()];
        for (int d = 0; d < docs.size(); d++) {
            if (!(docs.get(d) instanceof Map)) {
                return error("BadRequest", "doc " + d + " must be an object");
            }
            IndexSearcher searcher;
            try {
                searcher = index((Map<?, ?>) docs.get(d)).createSearcher();
            } catch (IllegalArgumentException e) {
                return error("BadRequest", "doc " + d + ": " + e.getMessage());
            }
            for (int q = 0; q < parsed.length; q++) {
                if (parsed[q].query == null) {
                    continue;
                }
                try {
                    // count() rather than MemoryIndex.search(): a constant-score match
                    // (MatchAllDocs, FILTER clauses) may score 0 and look like a miss.
                    hits[q][d] = searcher.count(parsed[q].query) > 0;
                } catch (IOException | RuntimeException e) {
                    parsed[q] = new Parsed(null, e.getClass().getSimpleName(),
                            "doc " + d + ": " + e.getMessage());
                }
            }
        }

        StringBuilder out = new StringBuilder();
        if (batch) {
            out.append("{\"ok\":true,\"results\":[");
        }
        for (int q = 0; q < parsed.length; q++) {
            if (q > 0) {
                out.append(',');
            }
            if (parsed[q].query == null) {
                out.append(error(parsed[q].kind, parsed[q].message));
                continue;
            }
            out.append("{\"ok\":true,\"parsed\":");
            Json.quote(out, parsed[q].query.toString());
            out.append(",\"matches\":[");
            for (int d = 0; d < docs.size(); d++) {
                if (d > 0) {
                    out.append(',');
                }
                out.append(hits[q][d] ? "true" : "false");
            }
            out.append("]}");
        }
        if (batch) {
            out.append("]}");
        }
        return out.toString();
    }

    /** One document in its own index, as Elasticsearch would analyze it. */
    MemoryIndex index(Map<?, ?> doc) {
        MemoryIndex mi = new MemoryIndex();
        for (Map.Entry<?, ?> e : doc.entrySet()) {
            String field = (String) e.getKey();
            Object v = e.getValue();
            List<?> values = v instanceof List ? (List<?>) v : List.of(String.valueOf(v));
            boolean present = false;
            for (Object value : values) {
                if (!(value instanceof String)) {
                    throw new IllegalArgumentException("field " + field + ": values must be strings");
                }
                // Repeated addField calls on one field apply the analyzer's position gap,
                // also after an empty value, just as IndexWriter does.
                mi.addField(field, (String) value, analyzer);
                present = true;
            }
            if (present) {
                mi.addField(FIELD_NAMES, field, keyword);
            }
        }
        return mi;
    }

    static String error(String kind, String message) {
        StringBuilder out = new StringBuilder("{\"ok\":false,\"kind\":");
        Json.quote(out, kind);
        out.append(",\"error\":");
        Json.quote(out, message == null ? "" : message);
        out.append('}');
        return out.toString();
    }

    public static void main(String[] args) throws IOException {
        LuceneOracle oracle = new LuceneOracle();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String response;
            try {
                response = oracle.handle(line);
            } catch (Throwable t) {
                // Never die mid-session: the Python side would lose every later verdict.
                response = error("InternalError", t.toString());
            }
            out.println(response);
            out.flush();
        }
    }

    /** Just enough JSON for the protocol: objects, arrays, strings, literals, numbers. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object parseTop() {
            Object v = value();
            ws();
            if (i != s.length()) {
                throw new IllegalArgumentException("trailing data at " + i);
            }
            return v;
        }

        private void ws() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
        }

        private char peek() {
            if (i >= s.length()) {
                throw new IllegalArgumentException("unexpected end of input");
            }
            return s.charAt(i);
        }

        private void expect(char c) {
            if (peek() != c) {
                throw new IllegalArgumentException("expected '" + c + "' at " + i);
            }
            i++;
        }

        private Object value() {
            ws();
            char c = peek();
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    return number();
            }
        }

        private Object literal(String word, Object v) {
            if (!s.startsWith(word, i)) {
                throw new IllegalArgumentException("bad literal at " + i);
            }
            i += word.length();
            return v;
        }

        private Object number() {
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
            if (start == i) {
                throw new IllegalArgumentException("unexpected '" + s.charAt(i) + "' at " + i);
            }
            return Double.parseDouble(s.substring(start, i));
        }

        private Map<String, Object> object() {
            expect('{');
            Map<String, Object> m = new LinkedHashMap<>();
            ws();
            if (peek() == '}') {
                i++;
                return m;
            }
            while (true) {
                ws();
                String k = string();
                ws();
                expect(':');
                m.put(k, value());
                ws();
                if (peek() == ',') {
                    i++;
                    continue;
                }
                expect('}');
                return m;
            }
        }

        private List<Object> array() {
            expect('[');
            List<Object> a = new ArrayList<>();
            ws();
            if (peek() == ']') {
                i++;
                return a;
            }
            while (true) {
                a.add(value());
                ws();
                if (peek() == ',') {
                    i++;
                    continue;
                }
                expect(']');
                return a;
            }
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                char c = peek();
                i++;
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                char e = peek();
                i++;
                switch (e) {
                    case '"': b.append('"'); break;
                    case '\\': b.append('\\'); break;
                    case '/': b.append('/'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) {
                            throw new IllegalArgumentException("short \\u escape at " + i);
                        }
                        // Surrogate pairs arrive as two escapes; appending both halves
                        // rebuilds the code point.
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                        break;
                    default:
                        throw new IllegalArgumentException("bad escape \\" + e + " at " + i);
                }
            }
        }

        static void quote(StringBuilder out, String v) {
            out.append('"');
            for (int k = 0; k < v.length(); k++) {
                char c = v.charAt(k);
                if (c == '"' || c == '\\') {
                    out.append('\\').append(c);
                } else if (c >= 0x20 && c < 0x7f) {
                    out.append(c);
                } else {
                    out.append(String.format("\\u%04x", (int) c));
                }
            }
            out.append('"');
        }
    }
}
