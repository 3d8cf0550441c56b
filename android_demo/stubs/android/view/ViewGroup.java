package android.view;

public abstract class ViewGroup extends View {
    public ViewGroup() { throw new RuntimeException("Stub!"); }
}
