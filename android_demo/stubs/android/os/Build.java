package android.os;

public class Build {
    public static final String MANUFACTURER;
    public static final String MODEL;
    /** API 31. */
    public static final String SOC_MODEL;

    static {
        MANUFACTURER = null;
        MODEL = null;
        SOC_MODEL = null;
    }

    public Build() { throw new RuntimeException("Stub!"); }

    public static class VERSION {
        public static final String RELEASE;
        public static final int SDK_INT;

        static {
            RELEASE = null;
            SDK_INT = 0;
        }

        public VERSION() { throw new RuntimeException("Stub!"); }
    }
}
