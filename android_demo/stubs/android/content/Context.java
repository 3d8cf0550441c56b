package android.content;

import android.content.res.AssetManager;
import java.io.File;

public abstract class Context {
    public abstract AssetManager getAssets();
    public abstract ContentResolver getContentResolver();
    public abstract File getFilesDir();
    public abstract File getExternalFilesDir(String type);
    public abstract void startActivity(Intent intent);
    public final String getString(int resId) { throw new RuntimeException("Stub!"); }
    public final String getString(int resId, Object... formatArgs) { throw new RuntimeException("Stub!"); }
}
