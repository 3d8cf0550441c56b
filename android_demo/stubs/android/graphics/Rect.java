package android.graphics;

public final class Rect {
    public Rect() { throw new RuntimeException("Stub!"); }
}
