package android.graphics;

import java.io.InputStream;

public class BitmapFactory {
    public BitmapFactory() { throw new RuntimeException("Stub!"); }

    public static Bitmap decodeStream(InputStream is, Rect outPadding, Options opts) { throw new RuntimeException("Stub!"); }

    public static class Options {
        public boolean inJustDecodeBounds;
        public int inSampleSize;
        public Bitmap.Config inPreferredConfig;
        public int outWidth;
        public int outHeight;

        public Options() { throw new RuntimeException("Stub!"); }
    }
}
