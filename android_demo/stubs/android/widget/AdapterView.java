package android.widget;

import android.view.ViewGroup;

public abstract class AdapterView<T extends Adapter> extends ViewGroup {
    public AdapterView() { throw new RuntimeException("Stub!"); }
    public abstract T getAdapter();
    public abstract void setAdapter(T adapter);
    public int getSelectedItemPosition() { throw new RuntimeException("Stub!"); }
}
