// Index `recheck events` JSON lines with Lucene 8, as recheck's store indexes them.
//
// Used by benchmarks/ingest.py as the baseline (compiled there against Debian's
// liblucene8-java). Each line is one flat JSON object: "id", and fields whose value is
// a string or a list of strings. Every field the store searches becomes a TextField
// (StandardAnalyzer, positions), the generation and time are points with doc values,
// and the line itself is the stored document, as the store keeps each event's JSON.
//
// Usage: java LuceneIngest EVENTS.jsonl INDEX_DIR RAM_BUFFER_MB FIELD,FIELD,...
// Prints: <events> <seconds>

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.LongPoint;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.SerialMergeScheduler;
import org.apache.lucene.store.FSDirectory;

public class LuceneIngest {
    public static void main(String[] args) throws Exception {
        Set<String> indexed = new HashSet<>(List.of(args[3].split(",")));
        IndexWriterConfig config = new IndexWriterConfig(new StandardAnalyzer());
        config.setRAMBufferSizeMB(Double.parseDouble(args[2]));
        config.setOpenMode(IndexWriterConfig.OpenMode.CREATE);
        config.setMergeScheduler(new SerialMergeScheduler()); // one thread: merges inline
        long start = System.nanoTime();
        long count = 0;
        try (FSDirectory dir = FSDirectory.open(Paths.get(args[1]));
             IndexWriter writer = new IndexWriter(dir, config);
             BufferedReader in = new BufferedReader(new InputStreamReader(
                 new FileInputStream(args[0]), StandardCharsets.UTF_8), 1 << 20)) {
            String line;
            List<String[]> fields = new ArrayList<>();
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) continue;
                fields.clear();
                parse(line, fields);
                Document doc = new Document();
                for (String[] field : fields) {
                    if (indexed.contains(field[0])) {
                        doc.add(new TextField(field[0], field[1], Field.Store.NO));
                    }
                }
                doc.add(new LongPoint("_gen", 1));
                doc.add(new NumericDocValuesField("_gen", 1));
                doc.add(new LongPoint("_time", 1700000000L));
                doc.add(new NumericDocValuesField("_time", 1700000000L));
                doc.add(new StoredField("_event", line.getBytes(StandardCharsets.UTF_8)));
                writer.addDocument(doc);
                count++;
            }
            writer.commit();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.println(count + " " + seconds);
    }

    // A flat JSON object: (name, value) pairs, one per string of a list value.
    static void parse(String s, List<String[]> out) {
        int[] pos = {skip(s, 0)};
        expect(s, pos, '{');
        while (true) {
            pos[0] = skip(s, pos[0]);
            if (s.charAt(pos[0]) == '}') return;
            if (s.charAt(pos[0]) == ',') pos[0] = skip(s, pos[0] + 1);
            String name = string(s, pos);
            pos[0] = skip(s, pos[0]);
            expect(s, pos, ':');
            pos[0] = skip(s, pos[0]);
            if (s.charAt(pos[0]) == '[') {
                pos[0]++;
                while (true) {
                    pos[0] = skip(s, pos[0]);
                    char c = s.charAt(pos[0]);
                    if (c == ']') { pos[0]++; break; }
                    if (c == ',') { pos[0]++; continue; }
                    out.add(new String[] {name, string(s, pos)});
                }
            } else {
                out.add(new String[] {name, string(s, pos)});
            }
        }
    }

    static int skip(String s, int i) {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        return i;
    }

    static void expect(String s, int[] pos, char c) {
        if (s.charAt(pos[0]) != c) throw new IllegalArgumentException("expected " + c + " at " + pos[0]);
        pos[0]++;
    }

    static String string(String s, int[] pos) {
        expect(s, pos, '"');
        StringBuilder b = new StringBuilder();
        int i = pos[0];
        while (true) {
            char c = s.charAt(i++);
            if (c == '"') break;
            if (c != '\\') { b.append(c); continue; }
            char e = s.charAt(i++);
            switch (e) {
                case 'n': b.append('\n'); break;
                case 't': b.append('\t'); break;
                case 'r': b.append('\r'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                default: b.append(e);
            }
        }
        pos[0] = i;
        return b.toString();
    }
}
