A request handed to the thread pool now wakes one idle thread only (the one that became idle last), where two woke and competed for the GIL: requests made one after another are answered sooner.
