package android.widget;

public abstract class AbsSpinner extends AdapterView<SpinnerAdapter> {
    public AbsSpinner() { throw new RuntimeException("Stub!"); }
    public SpinnerAdapter getAdapter() { throw new RuntimeException("Stub!"); }
    public void setAdapter(SpinnerAdapter adapter) { throw new RuntimeException("Stub!"); }
}
