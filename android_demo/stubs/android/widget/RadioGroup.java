package android.widget;

public class RadioGroup extends LinearLayout {
    public RadioGroup() { throw new RuntimeException("Stub!"); }
    public void check(int id) { throw new RuntimeException("Stub!"); }
    public int getCheckedRadioButtonId() { throw new RuntimeException("Stub!"); }
}
