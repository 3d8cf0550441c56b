package android.widget;

public class Button extends TextView {
    public Button() { throw new RuntimeException("Stub!"); }
}
