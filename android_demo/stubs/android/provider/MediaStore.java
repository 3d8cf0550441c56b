package android.provider;

public final class MediaStore {
    /** API 33: the system photo picker. */
    public static final String ACTION_PICK_IMAGES = "android.provider.action.PICK_IMAGES";

    public MediaStore() { throw new RuntimeException("Stub!"); }
}
