package io.egressctl.cli.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The numeric {@code --name value} / {@code --name=value} options of the benchmarks: every option is
 * a whole number of at least 1 ({@code warmup}: at least 0), and only the options given as defaults exist.
 */
final class BenchOptions {

    private BenchOptions() {
    }

    /**
     * {@code defaults} with the values {@code args} give.
     *
     * @throws IllegalArgumentException naming the argument that is not an option, an unknown option,
     *                                  or a value that is not a positive number
     */
    static Map<String, Integer> parse(String[] args, Map<String, Integer> defaults) {
        Map<String, Integer> o = new LinkedHashMap<>(defaults);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "'");
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (i + 1 < args.length) {
                value = args[++i];
            }
            if (!o.containsKey(name)) {
                throw new IllegalArgumentException("unknown option --" + name);
            }
            try {
                int v = Integer.parseInt(value);
                if (v < (name.equals("warmup") ? 0 : 1)) {
                    throw new NumberFormatException();
                }
                o.put(name, v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + name + " needs a positive number");
            }
        }
        return o;
    }
}
