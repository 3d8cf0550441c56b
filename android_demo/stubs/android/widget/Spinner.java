package android.widget;

public class Spinner extends AbsSpinner {
    public Spinner() { throw new RuntimeException("Stub!"); }
}
